// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest) with callfleet's CRDs installed, for tests of controllers, CRD
// validation and charts. The binaries come from hack/build-kube.sh.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/callfleet/callfleet/internal/scheme"
)

// Env is a running control plane with a client for it.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *k8sruntime.Scheme
	env    *envtest.Environment
}

// RepoRoot returns the repository root, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Scheme returns a scheme with client-go's and callfleet's types.
func Scheme() *k8sruntime.Scheme { return scheme.New() }

// assetsDir finds kube-apiserver and etcd: KUBEBUILDER_ASSETS when set (make
// test sets it), else bin/k8s in the repository.
func assetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin", "k8s")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run `make test` or hack/build-kube.sh, which build it from Go modules", name, dir)
		}
	}
	return dir, nil
}

// Start launches kube-apiserver and etcd with the CRDs of config/crd/bases.
func Start() (*Env, error) {
	dir, err := assetsDir()
	if err != nil {
		return nil, err
	}
	sch := Scheme()
	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                sch,
		// envtest's defaults (20 s to start, 10 s for the CRDs to be served)
		// are wall-clock limits a busy 2-core CI box overruns; these only
		// bound a wait, they measure nothing.
		ControlPlaneStartTimeout: 5 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		CRDInstallOptions:        envtest.CRDInstallOptions{MaxTime: 2 * time.Minute},
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	// Controllers and tests write many objects quickly; the default client
	// rate limit (5 qps) would make tests measure the limiter.
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := client.New(cfg, client.Options{Scheme: sch})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: sch, env: env}, nil
}

// Stop ends the control plane.
func (e *Env) Stop() error { return e.env.Stop() }

// WriteKubeconfig writes a kubeconfig for the control plane, for processes
// (manager, gateway, kubectl, helm) that tests run beside it.
func (e *Env) WriteKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: e.Config.Host, CertificateAuthorityData: e.Config.CAData}
	cfg.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: e.Config.CertData, ClientKeyData: e.Config.KeyData, Token: e.Config.BearerToken}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	cfg.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*cfg, path)
}
