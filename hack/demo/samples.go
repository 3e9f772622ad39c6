package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
)

// samples is what the demo needs to know of config/samples: the account to
// give the sim, the external endpoint the gateway serves, and the numbers
// the scenario scripts.
type samples struct {
	appID            int64
	secret, from     string
	accountName      string
	endpoint         *voicev1alpha1.StreamEndpoint
	calls            []voicev1alpha1.Call
	pools            []voicev1alpha1.AgentPool
	defaultGatewayAt string // host:port of the endpoint's publicURL
}

// readSamples renders the samples kustomization with kubectl and picks out
// the objects the demo is wired to.
func readSamples(kubectl, dir string) (*samples, error) {
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return nil, fmt.Errorf("kubectl kustomize %s: %v\n%s", dir, err, stderr)
	}
	s := &samples{}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("samples: %w", err)
		}
		switch meta.Kind {
		case "Secret":
			var sec corev1.Secret
			if err := yaml.UnmarshalStrict([]byte(doc), &sec); err != nil {
				return nil, fmt.Errorf("samples: Secret: %w", err)
			}
			get := func(k string) string {
				if v, ok := sec.StringData[k]; ok {
					return v
				}
				return string(sec.Data[k])
			}
			if get("appId") == "" {
				continue
			}
			id, err := strconv.ParseInt(get("appId"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("samples: Secret %s: appId %q is not a number", sec.Name, get("appId"))
			}
			s.appID, s.secret, s.from, s.accountName = id, get("secret"), get("from"), sec.Name
		case "StreamEndpoint":
			var ep voicev1alpha1.StreamEndpoint
			if err := yaml.Unmarshal([]byte(doc), &ep); err != nil {
				return nil, fmt.Errorf("samples: StreamEndpoint: %w", err)
			}
			if ep.Spec.External != nil && s.endpoint == nil {
				s.endpoint = &ep
			}
		case "Call":
			var c voicev1alpha1.Call
			if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
				return nil, fmt.Errorf("samples: Call: %w", err)
			}
			s.calls = append(s.calls, c)
		case "AgentPool":
			var p voicev1alpha1.AgentPool
			if err := yaml.Unmarshal([]byte(doc), &p); err != nil {
				return nil, fmt.Errorf("samples: AgentPool: %w", err)
			}
			s.pools = append(s.pools, p)
		}
	}
	switch {
	case s.accountName == "":
		return nil, fmt.Errorf("samples in %s: no Secret with appId, secret and from (the Piopiy account)", dir)
	case s.endpoint == nil:
		return nil, fmt.Errorf("samples in %s: no StreamEndpoint in external mode for the local gateway", dir)
	case len(s.calls) == 0:
		return nil, fmt.Errorf("samples in %s: no Call", dir)
	}
	u, err := url.Parse(s.endpoint.Spec.PublicURL)
	if err != nil || u.Port() == "" {
		return nil, fmt.Errorf("samples: StreamEndpoint %s: publicURL %q needs a host:port the local gateway can listen on", s.endpoint.Name, s.endpoint.Spec.PublicURL)
	}
	s.defaultGatewayAt = u.Host
	return s, nil
}

// overlay writes, when the gateway does not listen where the samples say,
// a kustomization in dir that applies the samples with the StreamEndpoint
// pointed at the gateway's address; it returns what to pass to kubectl -k.
func (s *samples) overlay(samplesDir, dir, gatewayAddr string) (string, error) {
	if gatewayAddr == s.defaultGatewayAt {
		return samplesDir, nil
	}
	od := filepath.Join(dir, "samples")
	if err := os.MkdirAll(od, 0o755); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(od, samplesDir)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Written by hack/demo: %s with the StreamEndpoint pointed at the
# gateway's --gateway-addr (%s) instead of %s.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
patches:
  - target:
      kind: StreamEndpoint
      name: %s
    patch: |-
      - op: replace
        path: /spec/publicURL
        value: ws://%s/
      - op: replace
        path: /spec/external/healthURL
        value: http://%s/healthz
`, samplesDir, gatewayAddr, s.defaultGatewayAt, rel, s.endpoint.Name, gatewayAddr, gatewayAddr)
	return od, os.WriteFile(filepath.Join(od, "kustomization.yaml"), b.Bytes(), 0o644)
}

// scenario is the sim's script for the samples: each sample Call's number
// answers after about a second and talks for talk; each agent of a sample
// AgentPool answers a bridge after about a second and stays on.
func (s *samples) scenario(talk string) string {
	var b bytes.Buffer
	b.WriteString(`# piopiy-sim scenario written by hack/demo from config/samples
# (format: piopiy-sim --help, docs/piopiy-sim.md). Change it at run time:
#   curl -X PUT --data-binary @scenario.yaml http://<sim>/sim/scenario

# Numbers you dial yourself (a Call you create): answer after 2s, talk 2m.
default:
  outcome: answer
  ringDelay: 300ms
  answerDelay: 2s
  hangupAfter: 2m
# Agents not listed: answer a bridge after 1s and stay until the call ends.
defaultAgent:
  answerDelay: 1s
numbers:
`)
	seen := map[string]bool{}
	for _, c := range s.calls {
		if seen[c.Spec.To] {
			continue
		}
		seen[c.Spec.To] = true
		fmt.Fprintf(&b, "  %q:   # Call %s\n    outcome: answer\n    ringDelay: 300ms\n    answerDelay: 1s\n    hangupAfter: %s\n", c.Spec.To, c.Name, talk)
	}
	var agents bytes.Buffer
	for _, p := range s.pools {
		for _, a := range p.Spec.Agents {
			if seen["agent "+a.Number] {
				continue
			}
			seen["agent "+a.Number] = true
			fmt.Fprintf(&agents, "  %q:   # %s of AgentPool %s\n    answerDelay: 1s\n", a.Number, a.Name, p.Name)
		}
	}
	if agents.Len() > 0 {
		b.WriteString("agents:\n")
		b.Write(agents.Bytes())
	}
	return b.String()
}
