package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/sim"
)

// terminalSince is when every sample Call was first seen ended, for the
// early failure of a smoke run that can no longer succeed.
var terminalSince time.Time

// smokeDone reports whether the smoke run succeeded: every sample Call
// Completed with its attempt answered, and at least one of them handed off
// to an agent, in the Call's status (status.handoff.bridgedTime) and in the
// sim's record (a bridge an agent answered). A non-empty reason with false
// means it cannot succeed any more.
func smokeDone(w *watcher, sw *simWatcher, smp *samples) (bool, string) {
	recs := sw.latest()
	var done []string
	handedOff := ""
	allTerminal := true
	for i := range smp.calls {
		name := smp.calls[i].Name
		c, sawHandedOff := w.call(name)
		if c == nil {
			return false, ""
		}
		ph := c.Status.Phase
		if ph != voicev1alpha1.CallCompleted && ph != voicev1alpha1.CallFailed {
			allTerminal = false
			continue
		}
		rec := lastRecord(recs, name)
		if rec == nil || rec.State != "ended" {
			allTerminal = false
			continue
		}
		if ph != voicev1alpha1.CallCompleted || rec.Outcome != "answered" {
			return false, fmt.Sprintf("Call %s ended %s (sim outcome %q, hangup cause %q), want Completed and answered", name, ph, rec.Outcome, rec.HangupCause)
		}
		a := c.Status.Attempts[len(c.Status.Attempts)-1]
		done = append(done, fmt.Sprintf("Call %s Completed (%s, %ds, settled by %s)", name, a.Outcome, a.DurationSeconds, a.SettledBy))
		h := c.Status.Handoff
		if h == nil || h.BridgedTime == nil {
			continue
		}
		for _, b := range rec.Bridges {
			if b.Answered {
				seen := ""
				if sawHandedOff {
					seen = ", phase HandedOff seen"
				}
				handedOff = fmt.Sprintf("handed off (source %s) to %s %s, bridged %s after the request%s; sim: bridge to %s answered, %s",
					h.Source, h.Agent, h.Number, h.BridgedTime.Sub(h.RequestedTime.Time).Round(100*time.Millisecond), seen, b.Agent, orDash(b.EndCause))
				break
			}
		}
	}
	switch {
	case !allTerminal:
		terminalSince = time.Time{}
		return false, ""
	case handedOff != "":
		return true, strings.Join(done, "; ") + "; " + handedOff
	case terminalSince.IsZero():
		terminalSince = time.Now()
		return false, ""
	case time.Since(terminalSince) < 3*time.Second:
		return false, ""
	default:
		return false, "every sample Call ended but none was handed off to an agent (status.handoff.bridgedTime unset, or no answered bridge in the sim)"
	}
}

// lastRecord is the sim's latest call placed for the named Call.
func lastRecord(recs []sim.CallRecord, name string) *sim.CallRecord {
	var out *sim.CallRecord
	for i := range recs {
		if callName(&recs[i]) == name && (out == nil || recs[i].DialedAt.After(out.DialedAt)) {
			out = &recs[i]
		}
	}
	return out
}

// dump prints what a failed smoke run needs to be understood.
func dump(out io.Writer, c config, k8s client.Client, sw *simWatcher, logDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sayf(out, "\n===== diagnostic dump =====\n")
	var calls voicev1alpha1.CallList
	if err := k8s.List(ctx, &calls, client.InNamespace(c.namespace)); err != nil {
		sayf(out, "listing Calls: %v\n", err)
	}
	for _, call := range calls.Items {
		b, _ := yaml.Marshal(call.Status)
		sayf(out, "--- Call %s (to %s) status:\n%s", call.Name, call.Spec.To, b)
	}
	var eps voicev1alpha1.StreamEndpointList
	if err := k8s.List(ctx, &eps, client.InNamespace(c.namespace)); err == nil {
		for _, e := range eps.Items {
			b, _ := yaml.Marshal(e.Status)
			sayf(out, "--- StreamEndpoint %s status:\n%s", e.Name, b)
		}
	}
	var pools voicev1alpha1.AgentPoolList
	if err := k8s.List(ctx, &pools, client.InNamespace(c.namespace)); err == nil {
		for _, p := range pools.Items {
			b, _ := yaml.Marshal(p.Status)
			sayf(out, "--- AgentPool %s status:\n%s", p.Name, b)
		}
	}
	recs, err := sw.fetch()
	if err != nil {
		recs = sw.latest()
		sayf(out, "--- piopiy-sim: %v (showing the last record read)\n", err)
	}
	sayf(out, "--- piopiy-sim: %d calls\n", len(recs))
	for _, r := range recs {
		sayf(out, "  %s to %s: state %s, outcome %s, hangup %s, %d streams, %d bridges, %d events\n",
			callName(&r), r.To, r.State, orDash(r.Outcome), orDash(r.HangupCause), len(r.Streams), len(r.Bridges), len(r.Events))
		for _, s := range r.Streams {
			sayf(out, "    stream connected=%v close=%d %s dial_error=%q pcmos=%d\n", s.ConnectedAt != nil, s.CloseCode, s.CloseReason, s.DialError, len(s.PCMOs))
		}
		for _, b := range r.Bridges {
			sayf(out, "    bridge %v answered=%v agent=%s end=%s\n", b.Targets, b.Answered, b.Agent, b.EndCause)
		}
		for _, e := range r.Events {
			if !e.Delivered {
				sayf(out, "    event %s (leg %s) not delivered: %d attempts\n", e.Status, e.Leg, len(e.Attempts))
			}
		}
	}
	logs, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
	sort.Strings(logs)
	for _, l := range logs {
		if strings.HasSuffix(l, "kube-apiserver.log") || strings.HasSuffix(l, "etcd.log") {
			continue
		}
		sayf(out, "--- last lines of %s:\n%s", l, indent(tailFile(l, 25)))
	}
	sayf(out, "===== end of dump =====\n")
}

// printHowTo tells how to look and poke, and how to stop.
func printHowTo(out io.Writer, c config, kubeconfig string, smp *samples) {
	kc := rel(c.root, kubeconfig)
	ns := c.namespace
	sayf(out, `
callfleet demo is running. %s rings at once; its bot asks for a human after
%d turns. In another terminal, from the repository root:

  export KUBECONFIG=%s PATH=$PWD/bin/k8s:$PATH
  kubectl get calls,streamendpoints,agentpools -n %s -w
  kubectl get call %s -n %s -o yaml      # attempts, stream, handoff

  # a Call of your own (the sim answers it after 2s and talks 2 minutes):
  kubectl create -n %s -f - <<<'{"apiVersion":"voice.callfleet.dev/v1alpha1","kind":"Call","metadata":{"name":"try-1"},"spec":{"to":"919812345678","streamEndpointRef":{"name":"%s"}}}'
  kubectl patch call try-1 -n %s --type merge -p '{"spec":{"stream":{"state":"Paused"}}}'   # "Active" resumes
  kubectl patch call try-1 -n %s --type merge -p '{"spec":{"handoff":{"agentPoolRef":{"name":"%s"},"requested":true}}}'
  kubectl patch call try-1 -n %s --type merge -p '{"spec":{"hangup":true}}'
  # the sample Campaign, its calling windows opened by a demo overlay so it dials now:
  kubectl apply -n %s -k %s
  kubectl get campaign spring-renewals -n %s -w

  curl -s http://%s/sim/calls | jq .     # piopiy-sim's record: webhooks, streams, bridges
  curl -s http://%s/sim/agents | jq .

Logs: %s/*.log    More: docs/demo.md
Ctrl-C stops everything: gateway, bot, manager, sim, then the apiserver.
`, strings.Join(callNames(smp), ", "), c.handoffAfterTurns, kc, ns, smp.calls[0].Name, ns, ns, smp.endpoint.Name, ns, ns, poolName(smp), ns, ns, rel(c.root, filepath.Join(c.dir, "campaign")), ns, c.simAddr, c.simAddr, rel(c.root, filepath.Join(c.dir, "logs")))
}

func callNames(smp *samples) []string {
	var out []string
	for _, c := range smp.calls {
		out = append(out, "Call "+c.Name)
	}
	return out
}

func poolName(smp *samples) string {
	if len(smp.pools) > 0 {
		return smp.pools[0].Name
	}
	return "support-agents"
}

// writeKubeconfig writes an admin kubeconfig for the control plane.
func writeKubeconfig(env *envtest.Environment, path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["callfleet-demo"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["callfleet-demo"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData, Token: env.Config.BearerToken}
	cfg.Contexts["callfleet-demo"] = &clientcmdapi.Context{Cluster: "callfleet-demo", AuthInfo: "callfleet-demo"}
	cfg.CurrentContext = "callfleet-demo"
	_ = os.Remove(path)
	return clientcmd.WriteToFile(*cfg, path)
}
