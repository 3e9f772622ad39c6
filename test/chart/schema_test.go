package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSchemaRejectsBadValues: values.schema.json (and the chart's own checks
// for combinations) refuse bad values before anything reaches a cluster,
// with a message naming the value and what is wrong.
func TestSchemaRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string // helm template flags
		file string   // a values file's content, passed with -f
		want []string // substrings of the error
	}{
		{name: "replicaCount is not a number", args: []string{"--set-string", "replicaCount=two"},
			want: []string{"at '/replicaCount'", "got string, want integer"}},
		{name: "negative replicaCount", args: []string{"--set", "replicaCount=-1"},
			want: []string{"at '/replicaCount'", "minimum: got -1, want 0"}},
		{name: "unknown top-level key (a typo)", args: []string{"--set", "replicas=3"},
			want: []string{"additional properties 'replicas' not allowed"}},
		{name: "unknown nested key", args: []string{"--set", "webhook.tokn=abcdefabcdefabcdef"},
			want: []string{"at '/webhook'", "additional properties 'tokn' not allowed"}},
		{name: "pullPolicy outside the enum", args: []string{"--set", "image.pullPolicy=Sometimes"},
			want: []string{"at '/image/pullPolicy'", "value must be one of 'Always', 'IfNotPresent', 'Never'"}},
		{name: "image digest malformed", args: []string{"--set", "image.digest=sha256:abc"},
			want: []string{"at '/image/digest'", "does not match pattern"}},
		{name: "Piopiy REST URL not http(s)", args: []string{"--set", "piopiy.restURL=ftp://rest.telecmi.com"},
			want: []string{"at '/piopiy/restURL'", "does not match pattern"}},
		{name: "qps zero", args: []string{"--set", "piopiy.qps=0"},
			want: []string{"at '/piopiy/qps'", "exclusiveMinimum: got 0, want 0"}},
		{name: "burst a fraction", args: []string{"--set", "piopiy.burst=1.5"},
			want: []string{"at '/piopiy/burst'", "want integer"}},
		{name: "app id with letters", args: []string{"--set-string", "piopiy.account.appId=12ab"},
			want: []string{"at '/piopiy/account/appId'", "does not match pattern"}},
		{name: "caller id too short", args: []string{"--set", "piopiy.account.from=12345"},
			want: []string{"at '/piopiy/account/from'", "exclusiveMinimum"}},
		{name: "settle timeout not a Go duration", args: []string{"--set", "calls.settleTimeout=5minutes"},
			want: []string{"at '/calls/settleTimeout'", "does not match pattern"}},
		{name: "webhook token too short", args: []string{"--set", "webhook.token=abc"},
			want: []string{"at '/webhook/token'", "minLength: got 3, want 16"}},
		{name: "webhook token not URL-safe", args: []string{"--set", "webhook.token=abcdefghijklmnop/q"},
			want: []string{"at '/webhook/token'", "does not match pattern"}},
		{name: "stream token key under 32 bytes", args: []string{"--set", "streamToken.key=too-short-a-key"},
			want: []string{"at '/streamToken/key'", "minLength: got 15, want 32"}},
		{name: "service type outside the enum", args: []string{"--set", "webhook.service.type=Ingress"},
			want: []string{"at '/webhook/service/type'", "value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'"}},
		{name: "service port out of range", args: []string{"--set", "webhook.service.port=70000"},
			want: []string{"at '/webhook/service/port'", "maximum: got 70,000, want 65,535"}},
		{name: "ingress host with a scheme", args: []string{"--set", "webhook.ingress.enabled=true", "--set", "webhook.ingress.host=https://hooks.example.com"},
			want: []string{"at '/webhook/ingress/host'", "does not match pattern"}},
		{name: "watched namespace not a DNS label", args: []string{"--set", "watchNamespaces[0]=Team_A"},
			want: []string{"at '/watchNamespaces/0'", "does not match pattern"}},
		{name: "serviceMonitor.enabled a string", args: []string{"--set-string", "metrics.serviceMonitor.enabled=yes"},
			want: []string{"at '/metrics/serviceMonitor/enabled'", "got string, want boolean"}},
		{name: "log encoder outside the enum", args: []string{"--set", "logging.encoder=xml"},
			want: []string{"at '/logging/encoder'", "value must be one of 'json', 'console'"}},
		{name: "extra arg not a flag", args: []string{"--set", "extraArgs[0]=zap-devel"},
			want: []string{"at '/extraArgs/0'", "does not match pattern"}},
		{name: "resources not an object", file: "resources: lots\n",
			want: []string{"at '/resources'", "got string, want object"}},
		{name: "unknown key in a values file", file: "webhook:\n  ingres:\n    enabled: true\n",
			want: []string{"at '/webhook'", "additional properties 'ingres' not allowed"}},

		// Combinations, checked by the chart's templates.
		{name: "two replicas without leader election", args: []string{"--set", "leaderElection.enabled=false"},
			want: []string{"replicaCount > 1 needs leaderElection.enabled=true", "rung twice"}},
		{name: "ingress without host", args: []string{"--set", "webhook.ingress.enabled=true"},
			want: []string{"webhook.ingress.host is required when webhook.ingress.enabled=true"}},
		{name: "account Secret and account values both", args: []string{"--set", "piopiy.accountSecret=acct", "--set", "piopiy.account.appId=1234567", "--set", "piopiy.account.secret=s"},
			want: []string{"set either piopiy.accountSecret", "not both"}},
		{name: "account without secret", args: []string{"--set", "piopiy.account.appId=1234567"},
			want: []string{"piopiy.account.secret is required with piopiy.account.appId"}},
		{name: "token and existing Secret both", args: []string{"--set", "webhook.token=abcdefghijklmnopq", "--set", "webhook.existingSecret=hook"},
			want: []string{"set either webhook.token or webhook.existingSecret, not both"}},
		{name: "stream token copies of an existing Secret", args: []string{"--set", "streamToken.existingSecret=key", "--set", "streamToken.namespaces[0]=bots"},
			want: []string{"streamToken.namespaces copies the chart-managed key"}},
		{name: "ServiceMonitor without metrics", args: []string{"--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"},
			want: []string{"metrics.serviceMonitor.enabled needs metrics.enabled=true"}},
	}
	if len(tests) < 10 {
		t.Fatal("the table must keep at least 10 bad values")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"template", releaseName, chartDir}, tt.args...)
			if tt.file != "" {
				f := filepath.Join(t.TempDir(), "values.yaml")
				if err := os.WriteFile(f, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-f", f)
			}
			out, errOut, err := run(t, "helm", args...)
			if err == nil {
				t.Fatalf("helm %s succeeded, want it refused:\n%.400s", strings.Join(tt.args, " "), out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestSchemaAcceptsNumbersForDigits: --set turns digit strings into numbers;
// app id and caller id take either and render as digit strings.
func TestSchemaAcceptsNumbersForDigits(t *testing.T) {
	objs := decode(t, render(t, "callfleet-system", "--set", "piopiy.account.appId=4471234", "--set", "piopiy.account.secret=s", "--set", "piopiy.account.from=919000000000"))
	s := find(t, objs, "Secret", "callfleet-piopiy-account")
	if get(s, "stringData", "appId") != "4471234" || get(s, "stringData", "from") != "919000000000" {
		t.Errorf("account Secret %v, want the digits as given", get(s, "stringData"))
	}
}
