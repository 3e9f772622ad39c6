package streamendpoint

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

// Labels on everything the controller makes.
const (
	// LabelStreamEndpoint names the StreamEndpoint a child (and its pods)
	// belongs to, for selectors outside this controller (dashboards, the
	// gateway's metrics, kubectl).
	LabelStreamEndpoint = "voice.callfleet.dev/stream-endpoint"

	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelManagedBy = "app.kubernetes.io/managed-by"

	appName   = "callfleet-stream-endpoint"
	managedBy = "callfleet"
)

// Containers, ports and mounts of the endpoint's pods.
const (
	// ContainerBot is the user's bot container.
	ContainerBot = "bot"
	// ContainerGateway is callfleet's stream gateway container.
	ContainerGateway = "gateway"

	// StreamTokenSecretKey is the key, in the endpoint's "<name>-stream-token"
	// Secret, of the key its gateway verifies ws_url tokens with.
	StreamTokenSecretKey = "key"
	// MonitorTokenSecretKey and MonitorPreviousSecretKey are the keys, in
	// the same Secret, of the gateway's monitor token keys (the current one
	// and, during a rotation, the previous one). They are mounted as "key"
	// and "previous" in a directory of their own, the layout the gateway's
	// key file reader expects.
	MonitorTokenSecretKey    = "monitor"
	MonitorPreviousSecretKey = "monitor-previous"

	portNameBot     = "bot"
	portNameGateway = "gateway"
	portNameMetrics = "metrics"
	// drainPath on the metrics port starts the gateway's drain and answers
	// when it is over (gateway.DrainPath).
	drainPath = "/drain"
	// metricsPort is where the gateway serves Prometheus metrics; fixed,
	// so a conflicting spec port is a spec error (see preflight).
	metricsPort = 9090

	volumeTmp          = "tmp"
	volumeStreamToken  = "stream-token"
	volumeMonitorToken = "monitor-token"
	volumeAPIAccess    = "kube-api-access"
	streamTokenDir     = "/var/run/callfleet/stream-token"
	monitorTokenDir    = "/var/run/callfleet/monitor-token"
	// serviceAccountDir is where client-go's in-cluster config looks for the
	// token, CA and namespace.
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

	defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"
)

// Spec defaults, repeated here because objects stored before a CRD default
// existed (or built in tests) may lack them; the CRD's defaults are the same.
const (
	defaultReplicas             = 1
	defaultBotPort              = 8080
	defaultGatewayPort          = 8443
	defaultMaxStreamsPerReplica = 20
	defaultSampleRate           = 8000
	defaultExternalCapacity     = 100
	defaultBotReconnectSeconds  = 30
	defaultGoodbyeSeconds       = 10
	// defaultDrainSeconds is a Call's default maxDurationSeconds: a call
	// placed just before the pod began to stop can still end on its own.
	defaultDrainSeconds = 600
	// maxDrainSeconds is the longest a Call can last (its maxDurationSeconds
	// maximum): no call needs a longer grace.
	maxDrainSeconds = 7200
	// shutdownMarginSeconds is added to the drain for the final status
	// writes and the bot's own stop: the pod's grace is the drain plus this.
	shutdownMarginSeconds = 30
)

// Values Kubernetes would default on the pod template. Setting them ourselves
// keeps the object we build equal to what the apiserver stores, so a steady
// state reconcile writes nothing.
const (
	probeTimeoutSeconds   = 1
	probeSuccessThreshold = 1
	probeFailureThreshold = 3
	volumeDefaultMode     = 0o644
	tokenExpirationSecs   = 3607 // what the kubelet's own kube-api-access volume uses
)

func replicas(ep *voicev1alpha1.StreamEndpoint) int32 {
	return ptr.Deref(ep.Spec.Replicas, defaultReplicas)
}

func botPort(ep *voicev1alpha1.StreamEndpoint) int32 {
	return orDefault(ep.Spec.Port, defaultBotPort)
}

func gatewayEnabled(ep *voicev1alpha1.StreamEndpoint) bool {
	return ptr.Deref(ep.Spec.Gateway.Enabled, true)
}

func gatewayPort(ep *voicev1alpha1.StreamEndpoint) int32 {
	return orDefault(ep.Spec.Gateway.Port, defaultGatewayPort)
}

// streamPort is the port Piopiy's socket reaches through the Service: the
// gateway's, or the bot's own when the bot speaks raw Piopiy.
func streamPort(ep *voicev1alpha1.StreamEndpoint) int32 {
	if gatewayEnabled(ep) {
		return gatewayPort(ep)
	}
	return botPort(ep)
}

func maxStreamsPerReplica(ep *voicev1alpha1.StreamEndpoint) int32 {
	return orDefault(ep.Spec.MaxStreamsPerReplica, defaultMaxStreamsPerReplica)
}

// drainSeconds is how long a stopping pod keeps its live calls.
func drainSeconds(ep *voicev1alpha1.StreamEndpoint) int32 {
	d := ptr.Deref(ep.Spec.Drain.GracePeriodSeconds, defaultDrainSeconds)
	return min(max(d, 0), maxDrainSeconds)
}

// terminationGraceSeconds is the pod's grace: the drain, then the margin
// for the gateway's last status writes.
func terminationGraceSeconds(ep *voicev1alpha1.StreamEndpoint) int64 {
	return int64(drainSeconds(ep)) + shutdownMarginSeconds
}

func externalCapacity(ep *voicev1alpha1.StreamEndpoint) int32 {
	return orDefault(ep.Spec.External.Capacity, defaultExternalCapacity)
}

func orDefault(v, def int32) int32 {
	if v == 0 {
		return def
	}
	return v
}

func gatewayAccessName(ep *voicev1alpha1.StreamEndpoint) string {
	return ep.Name + "-gateway"
}

// selectorLabels select the endpoint's pods. They are the Deployment's
// immutable selector, so they never change.
func selectorLabels(ep *voicev1alpha1.StreamEndpoint) map[string]string {
	return map[string]string{
		labelName:     appName,
		labelInstance: ep.Name,
	}
}

func endpointLabels(ep *voicev1alpha1.StreamEndpoint) map[string]string {
	l := selectorLabels(ep)
	l[labelManagedBy] = managedBy
	l[LabelStreamEndpoint] = ep.Name
	return l
}

// withEntries returns m with want's entries set, keeping the others: labels
// and annotations added by people or tools (kubectl rollout restart, for one)
// survive.
func withEntries(m, want map[string]string) map[string]string {
	if m == nil {
		m = make(map[string]string, len(want))
	}
	maps.Copy(m, want)
	return m
}

// serviceURL is the in-cluster URL of the endpoint's Service.
func serviceURL(ep *voicev1alpha1.StreamEndpoint) string {
	return fmt.Sprintf("ws://%s.%s.svc:%d/", ep.Name, ep.Namespace, streamPort(ep))
}

// restrictedContainer is a container security context meeting the restricted
// Pod Security Standard.
func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// podSpec is the endpoint's desired pod spec. monitor: the manager has a
// monitor root key, so the gateway gets the endpoint's monitor key.
func podSpec(ep *voicev1alpha1.StreamEndpoint, gatewayImage string, monitor bool) corev1.PodSpec {
	spec := corev1.PodSpec{
		// Long enough for the drain: Kubernetes kills what still runs after.
		TerminationGracePeriodSeconds: ptr.To(terminationGraceSeconds(ep)),
		// The default account has no rights we grant; set it explicitly (and
		// its deprecated alias, which the apiserver mirrors) so that turning
		// the gateway off moves the pods off the gateway's account.
		ServiceAccountName:       "default",
		DeprecatedServiceAccount: "default",
		// The token is mounted into the gateway container only (see
		// apiAccessVolume): the bot, the user's code, gets no credentials.
		AutomountServiceAccountToken: ptr.To(false),
		// Service environment variables would leak every Service in the
		// namespace into the bot's environment and could shadow its own.
		EnableServiceLinks: ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{botContainer(ep)},
		Volumes: []corev1.Volume{{
			// The root filesystem is read-only; the bot gets a scratch /tmp.
			Name:         volumeTmp,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
		}},
	}
	if !gatewayEnabled(ep) {
		return spec
	}
	spec.ServiceAccountName = gatewayAccessName(ep)
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
	spec.Containers = append(spec.Containers, gatewayContainer(ep, gatewayImage, monitor))
	spec.Volumes = append(spec.Volumes,
		corev1.Volume{
			Name: volumeStreamToken,
			// The whole Secret: during a rotation its key "previous" sits
			// beside "key", and the gateway verifies with both.
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  streamKeySecretName(ep),
				DefaultMode: ptr.To[int32](volumeDefaultMode),
			}},
		},
		apiAccessVolume(),
	)
	if monitor {
		spec.Volumes = append(spec.Volumes, corev1.Volume{
			Name: volumeMonitorToken,
			// The same Secret again, its monitor keys renamed to the "key"
			// and "previous" the gateway's key file reader looks for.
			// Optional: "monitor-previous" is there only during a rotation
			// (a missing "monitor" fails the gateway's start, loudly).
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: streamKeySecretName(ep),
				Items: []corev1.KeyToPath{
					{Key: MonitorTokenSecretKey, Path: StreamTokenSecretKey},
					{Key: MonitorPreviousSecretKey, Path: streamtoken.PreviousKeyFile},
				},
				DefaultMode: ptr.To[int32](volumeDefaultMode),
				Optional:    ptr.To(true),
			}},
		})
	}
	return spec
}

// apiAccessVolume is what automountServiceAccountToken would mount (a
// short-lived, audience-bound token, the cluster CA and the namespace), made
// by hand so it reaches the gateway container and not the bot.
func apiAccessVolume() corev1.Volume {
	return corev1.Volume{
		Name: volumeAPIAccess,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: ptr.To[int32](volumeDefaultMode),
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
					Path:              "token",
					ExpirationSeconds: ptr.To[int64](tokenExpirationSecs),
				}},
				{ConfigMap: &corev1.ConfigMapProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
					Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
				}},
				{DownwardAPI: &corev1.DownwardAPIProjection{
					Items: []corev1.DownwardAPIVolumeFile{{
						Path:     "namespace",
						FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
					}},
				}},
			},
		}},
	}
}

func botContainer(ep *voicev1alpha1.StreamEndpoint) corev1.Container {
	c := corev1.Container{
		Name:      ContainerBot,
		Image:     ep.Spec.Image,
		Env:       botEnv(ep),
		Resources: *ep.Spec.Resources.DeepCopy(),
		Ports: []corev1.ContainerPort{{
			Name: portNameBot, ContainerPort: botPort(ep), Protocol: corev1.ProtocolTCP,
		}},
		VolumeMounts:    []corev1.VolumeMount{{Name: volumeTmp, MountPath: "/tmp"}},
		SecurityContext: restrictedContainer(),
	}
	if !gatewayEnabled(ep) {
		// Piopiy reaches the bot directly, so it listens on the pod IP and a
		// TCP check is honest. With the gateway the bot may listen on
		// localhost only, where the kubelet cannot probe it.
		c.ReadinessProbe = probe(corev1.ProbeHandler{
			TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(portNameBot)},
		}, 5)
		return c
	}
	// The kubelet stops every container of a pod at once; the bot must
	// outlive the gateway's drain or the calls it lets go on have nobody to
	// talk to. Its preStop hook asks the gateway to drain and returns once
	// the drain is over: only then does the bot get its SIGTERM. (The
	// metrics port is not behind the Ingress, unlike the stream port.)
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: drainPath, Port: intstr.FromInt32(metricsPort), Scheme: corev1.URISchemeHTTP,
	}}}
	return c
}

// botEnv is callfleet's variables then the user's; a user variable of the
// same name replaces callfleet's.
func botEnv(ep *voicev1alpha1.StreamEndpoint) []corev1.EnvVar {
	listenMode := ep.Spec.Audio.ListenMode
	// The CRD default, for objects stored before it.
	if listenMode == "" {
		listenMode = voicev1alpha1.ListenCaller
	}
	ours := []corev1.EnvVar{
		{Name: "CALLFLEET_SAMPLE_RATE", Value: strconv.Itoa(int(orDefault(ep.Spec.Audio.SampleRate, defaultSampleRate)))},
		{Name: "CALLFLEET_LISTEN_MODE", Value: string(listenMode)},
		{Name: "CALLFLEET_PORT", Value: strconv.Itoa(int(botPort(ep)))},
	}
	user := make(map[string]bool, len(ep.Spec.Env))
	for _, e := range ep.Spec.Env {
		user[e.Name] = true
	}
	env := make([]corev1.EnvVar, 0, len(ours)+len(ep.Spec.Env))
	for _, e := range ours {
		if !user[e.Name] {
			env = append(env, e)
		}
	}
	for _, e := range ep.Spec.Env {
		e = *e.DeepCopy()
		// The apiserver fills fieldRef.apiVersion; fill it here too, or
		// every reconcile would see a difference and update the Deployment.
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.APIVersion == "" {
			e.ValueFrom.FieldRef.APIVersion = "v1"
		}
		env = append(env, e)
	}
	return env
}

func gatewayContainer(ep *voicev1alpha1.StreamEndpoint, image string, monitor bool) corev1.Container {
	c := gatewayContainerBase(ep, image)
	if u := ep.Spec.Drain.GoodbyeURL; u != "" {
		c.Args = append(c.Args, "--goodbye-url="+u)
	}
	if monitor {
		c.Args = append(c.Args, "--monitor-key-file="+monitorTokenDir+"/"+StreamTokenSecretKey)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volumeMonitorToken, MountPath: monitorTokenDir, ReadOnly: true})
	}
	return c
}

func gatewayContainerBase(ep *voicev1alpha1.StreamEndpoint, image string) corev1.Container {
	port := gatewayPort(ep)
	return corev1.Container{
		Name:  ContainerGateway,
		Image: image,
		Args: []string{
			fmt.Sprintf("--listen=:%d", port),
			fmt.Sprintf("--bot-url=ws://127.0.0.1:%d/", botPort(ep)),
			"--endpoint=" + ep.Name,
			"--namespace=" + ep.Namespace,
			"--token-key-file=" + streamTokenDir + "/" + StreamTokenSecretKey,
			"--pod-name=$(POD_NAME)",
			fmt.Sprintf("--metrics-bind-address=:%d", metricsPort),
			fmt.Sprintf("--max-streams=%d", maxStreamsPerReplica(ep)),
			fmt.Sprintf("--shutdown-drain=%ds", drainSeconds(ep)),
			fmt.Sprintf("--goodbye-lead=%ds", orDefault(ep.Spec.Drain.GoodbyeSeconds, defaultGoodbyeSeconds)),
			fmt.Sprintf("--bot-reconnect=%ds", ptr.Deref(ep.Spec.Gateway.BotReconnectSeconds, defaultBotReconnectSeconds)),
		},
		Env: []corev1.EnvVar{{
			// The gateway reports which pod holds a Call's socket.
			Name: "POD_NAME",
			ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
				APIVersion: "v1", FieldPath: "metadata.name",
			}},
		}},
		Ports: []corev1.ContainerPort{
			{Name: portNameGateway, ContainerPort: port, Protocol: corev1.ProtocolTCP},
			{Name: portNameMetrics, ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
		},
		// Requests only: a memory limit would cut live calls when audio
		// buffers grow, and the right number depends on the load.
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("50m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		}},
		ReadinessProbe: probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/readyz", Port: intstr.FromString(portNameGateway), Scheme: corev1.URISchemeHTTP,
		}}, 5),
		LivenessProbe: probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/healthz", Port: intstr.FromString(portNameGateway), Scheme: corev1.URISchemeHTTP,
		}}, 10),
		VolumeMounts: []corev1.VolumeMount{
			{Name: volumeStreamToken, MountPath: streamTokenDir, ReadOnly: true},
			{Name: volumeAPIAccess, MountPath: serviceAccountDir, ReadOnly: true},
		},
		SecurityContext: restrictedContainer(),
	}
}

func probe(h corev1.ProbeHandler, periodSeconds int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     h,
		PeriodSeconds:    periodSeconds,
		TimeoutSeconds:   probeTimeoutSeconds,
		SuccessThreshold: probeSuccessThreshold,
		FailureThreshold: probeFailureThreshold,
	}
}

// mutateDeployment makes dep run ep. It edits the object read from the
// cluster field by field rather than replacing it, so that what the apiserver
// defaulted (strategy, restartPolicy, imagePullPolicy, ...) stays and an
// unchanged endpoint produces an unchanged Deployment.
func mutateDeployment(dep *appsv1.Deployment, ep *voicev1alpha1.StreamEndpoint, gatewayImage string, monitor bool) {
	dep.Labels = withEntries(dep.Labels, endpointLabels(ep))
	dep.Spec.Replicas = ptr.To(replicas(ep))
	if dep.CreationTimestamp.IsZero() {
		// The selector is immutable: set it once, on create.
		dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: selectorLabels(ep)}
	}
	tmpl := &dep.Spec.Template
	tmpl.Labels = withEntries(tmpl.Labels, endpointLabels(ep))
	tmpl.Annotations = withEntries(tmpl.Annotations, map[string]string{defaultContainerAnnotation: ContainerBot})

	// A new pod is ready before an old one begins to drain: capacity never
	// dips during a rollout.
	dep.Spec.Strategy = appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromString("25%")),
		},
	}

	want := podSpec(ep, gatewayImage, monitor)
	cur := &tmpl.Spec
	cur.TerminationGracePeriodSeconds = want.TerminationGracePeriodSeconds
	cur.ServiceAccountName = want.ServiceAccountName
	cur.DeprecatedServiceAccount = want.DeprecatedServiceAccount
	cur.AutomountServiceAccountToken = want.AutomountServiceAccountToken
	cur.EnableServiceLinks = want.EnableServiceLinks
	cur.SecurityContext = want.SecurityContext
	cur.Volumes = want.Volumes
	cur.Containers = mergeContainers(cur.Containers, want.Containers)
}

// mergeContainers returns want, keeping from the existing container of the
// same name the fields the apiserver defaults and we do not set.
func mergeContainers(existing, want []corev1.Container) []corev1.Container {
	out := make([]corev1.Container, len(want))
	for i, w := range want {
		for _, e := range existing {
			if e.Name != w.Name {
				continue
			}
			w.TerminationMessagePath = e.TerminationMessagePath
			w.TerminationMessagePolicy = e.TerminationMessagePolicy
			// The default pull policy depends on the image's tag: keep it
			// only while the image stays the same.
			if e.Image == w.Image {
				w.ImagePullPolicy = e.ImagePullPolicy
			}
		}
		out[i] = w
	}
	return out
}

// mutateService makes svc route the stream port (and the gateway's metrics)
// to ep's pods, keeping what the apiserver allocated (clusterIP, families).
func mutateService(svc *corev1.Service, ep *voicev1alpha1.StreamEndpoint) {
	svc.Labels = withEntries(svc.Labels, endpointLabels(ep))
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.Selector = selectorLabels(ep)
	if gatewayEnabled(ep) {
		svc.Spec.Ports = []corev1.ServicePort{
			{
				Name: portNameGateway, Port: gatewayPort(ep), TargetPort: intstr.FromString(portNameGateway),
				Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("kubernetes.io/ws"),
			},
			{
				Name: portNameMetrics, Port: metricsPort, TargetPort: intstr.FromString(portNameMetrics),
				Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("http"),
			},
		}
		return
	}
	svc.Spec.Ports = []corev1.ServicePort{{
		Name: portNameBot, Port: botPort(ep), TargetPort: intstr.FromString(portNameBot),
		Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("kubernetes.io/ws"),
	}}
}

// ingressRoute is where publicURL points: an Ingress host (empty for an IP
// address, which Ingress hosts cannot be) and a path prefix.
type ingressRoute struct {
	host string
	path string
}

func parsePublicURL(raw string) (ingressRoute, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return ingressRoute{}, err
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return ingressRoute{}, fmt.Errorf("scheme %q is not ws or wss", u.Scheme)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return ingressRoute{}, fmt.Errorf("no host")
	}
	if net.ParseIP(host) != nil {
		host = ""
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	return ingressRoute{host: host, path: path}, nil
}

// mutateIngress routes publicURL's host and path to the Service's stream
// port. Its annotations are exactly spec.ingress.annotations, so removing one
// from the spec removes it from the Ingress.
func mutateIngress(ing *networkingv1.Ingress, ep *voicev1alpha1.StreamEndpoint, route ingressRoute) {
	ing.Labels = withEntries(ing.Labels, endpointLabels(ep))
	ing.Annotations = maps.Clone(ep.Spec.Ingress.Annotations)
	spec := networkingv1.IngressSpec{
		IngressClassName: ep.Spec.Ingress.ClassName,
		Rules: []networkingv1.IngressRule{{
			Host: route.host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{
					// Prefix: the Call controller appends the Call's
					// identity and token to publicURL.
					Path:     route.path,
					PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: ep.Name,
						Port: networkingv1.ServiceBackendPort{Number: streamPort(ep)},
					}},
				}},
			}},
		}},
	}
	if secret := ep.Spec.Ingress.TLSSecretName; secret != "" {
		tls := networkingv1.IngressTLS{SecretName: secret}
		if route.host != "" {
			tls.Hosts = []string{route.host}
		}
		spec.TLS = []networkingv1.IngressTLS{tls}
	}
	ing.Spec = spec
}

// gatewayRules are what the gateway does with Calls: find the Call a socket
// belongs to, watch it for control (pause, hangup, handoff) and report the
// stream's state; and read an AgentPool's ring timeout for a handoff bridge.
func gatewayRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{
			APIGroups: []string{voicev1alpha1.GroupVersion.Group},
			Resources: []string{"agentpools"},
			Verbs:     []string{"get"},
		},
		{
			APIGroups: []string{voicev1alpha1.GroupVersion.Group},
			Resources: []string{"calls"},
			Verbs:     []string{"get", "list", "watch"},
		},
		{
			APIGroups: []string{voicev1alpha1.GroupVersion.Group},
			Resources: []string{"calls/status"},
			Verbs:     []string{"patch"},
		},
	}
}

func mutateServiceAccount(sa *corev1.ServiceAccount, ep *voicev1alpha1.StreamEndpoint) {
	sa.Labels = withEntries(sa.Labels, endpointLabels(ep))
	// Pods get the token through their own projected volume, into the
	// gateway container only.
	sa.AutomountServiceAccountToken = ptr.To(false)
}

func mutateRole(role *rbacv1.Role, ep *voicev1alpha1.StreamEndpoint) {
	role.Labels = withEntries(role.Labels, endpointLabels(ep))
	role.Rules = gatewayRules()
}

func mutateRoleBinding(rb *rbacv1.RoleBinding, ep *voicev1alpha1.StreamEndpoint) {
	rb.Labels = withEntries(rb.Labels, endpointLabels(ep))
	if rb.CreationTimestamp.IsZero() {
		// roleRef is immutable; it never changes for a given endpoint.
		rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: gatewayAccessName(ep)}
	}
	rb.Subjects = []rbacv1.Subject{{
		Kind: rbacv1.ServiceAccountKind, Name: gatewayAccessName(ep), Namespace: ep.Namespace,
	}}
}
