package streamendpoint

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/monitortoken"
	"github.com/callfleet/callfleet/internal/streamtoken"
)

const monitorKeyArg = "--monitor-key-file=" + monitorTokenDir + "/key"

// monitorOn labels an endpoint for the suite's manager that has a monitor
// root key.
func monitorOn(ep *voicev1alpha1.StreamEndpoint) {
	if ep.Labels == nil {
		ep.Labels = map[string]string{}
	}
	ep.Labels[labelMonitorOn] = "on"
}

// monitorMounted reports how the Deployment gives its pods the monitor key:
// the gateway's flag, its mount, the volume; and whether the bot mounts it.
func monitorMounted(dep *appsv1.Deployment) (arg, mount, volume, bot bool) {
	spec := dep.Spec.Template.Spec
	if gw := container(spec, ContainerGateway); gw != nil {
		arg = slices.Contains(gw.Args, monitorKeyArg)
		mount = slices.ContainsFunc(gw.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == volumeMonitorToken && m.MountPath == monitorTokenDir && m.ReadOnly
		})
	}
	if b := container(spec, ContainerBot); b != nil {
		bot = slices.ContainsFunc(b.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volumeMonitorToken })
	}
	volume = slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == volumeMonitorToken })
	return arg, mount, volume, bot
}

// TestMonitorKeyDerivedPerEndpoint: with a monitor root key, the endpoint's
// key Secret holds beside the stream key the monitor key derived for this
// namespace and endpoint (not the root, not the stream key), and only the
// gateway container mounts it, as the "key" file --monitor-key-file names.
// Without the root key (the endpoint moved to the manager that has none),
// the Secret loses the monitor key and the pods mount nothing of it.
func TestMonitorKeyDerivedPerEndpoint(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ep := managedEndpoint(ns, "bot", monitorOn)
	create(t, ep)

	want, err := monitortoken.DeriveKey(testMonitorRoot, ns, "bot")
	if err != nil {
		t.Fatal(err)
	}
	stream, _ := streamtoken.DeriveKey(testRootKey, ns, "bot")
	dep := waitForDeployment(t, ns, "bot", func(d *appsv1.Deployment) error {
		if arg, mount, volume, _ := monitorMounted(d); !arg || !mount || !volume {
			return fmt.Errorf("gateway monitor key: flag %v mount %v volume %v", arg, mount, volume)
		}
		return nil
	})
	if _, _, _, bot := monitorMounted(dep); bot {
		t.Error("the bot container mounts the monitor key")
	}
	var vol *corev1.Volume
	for i, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == volumeMonitorToken {
			vol = &dep.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol.Secret == nil || vol.Secret.SecretName != "bot-stream-token" {
		t.Fatalf("monitor key volume %+v, want the endpoint's key Secret", vol.VolumeSource)
	}
	items := map[string]string{}
	for _, it := range vol.Secret.Items {
		items[it.Key] = it.Path
	}
	if items[MonitorTokenSecretKey] != "key" || items[MonitorPreviousSecretKey] != "previous" || len(items) != 2 {
		t.Errorf("monitor key volume items %v, want monitor→key, monitor-previous→previous", items)
	}

	sec := &corev1.Secret{}
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), key(ns, "bot-stream-token"), sec); err != nil {
			return err
		}
		if _, ok := sec.Data[MonitorTokenSecretKey]; !ok {
			return fmt.Errorf("Secret data keys %v lack %s", slices.Collect(maps.Keys(sec.Data)), MonitorTokenSecretKey)
		}
		return nil
	})
	got := sec.Data[MonitorTokenSecretKey]
	switch {
	case bytes.Equal(got, testMonitorRoot) || bytes.Contains(got, testMonitorRoot):
		t.Error("the gateway got the monitor root key")
	case bytes.Equal(got, stream):
		t.Error("the monitor key equals the stream token key")
	case !bytes.Equal(got, want):
		t.Errorf("monitor key is not the one derived for %s/bot", ns)
	}
	if !bytes.Equal(sec.Data[StreamTokenSecretKey], stream) || len(sec.Data) != 2 {
		t.Errorf("Secret data keys %v, want the stream and the monitor key", slices.Collect(maps.Keys(sec.Data)))
	}

	// Monitoring off: the manager without a monitor key takes the endpoint
	// over and removes the key and its mount.
	update(t, ep, func(ep *voicev1alpha1.StreamEndpoint) { delete(ep.Labels, labelMonitorOn) })
	waitForDeployment(t, ns, "bot", func(d *appsv1.Deployment) error {
		if arg, mount, volume, bot := monitorMounted(d); arg || mount || volume || bot {
			return fmt.Errorf("monitor key still given: flag %v mount %v volume %v bot %v", arg, mount, volume, bot)
		}
		return nil
	})
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), key(ns, "bot-stream-token"), sec); err != nil {
			return err
		}
		if ks := slices.Sorted(maps.Keys(sec.Data)); !slices.Equal(ks, []string{StreamTokenSecretKey}) {
			return fmt.Errorf("Secret data keys %v, want only %s", ks, StreamTokenSecretKey)
		}
		return nil
	})
}

// TestNoMonitorKeyWithoutRoot: a manager without a monitor root key gives
// the gateway no monitor key at all: no Secret key, no volume, no mount, no
// flag (the gateway then refuses every monitor socket).
func TestNoMonitorKeyWithoutRoot(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, managedEndpoint(ns, "bot"))
	dep := waitForDeployment(t, ns, "bot", func(d *appsv1.Deployment) error {
		if container(d.Spec.Template.Spec, ContainerGateway) == nil {
			return fmt.Errorf("no gateway container yet")
		}
		return nil
	})
	if arg, mount, volume, bot := monitorMounted(dep); arg || mount || volume || bot {
		t.Errorf("monitor key given without a root: flag %v mount %v volume %v bot %v", arg, mount, volume, bot)
	}
	for _, a := range container(dep.Spec.Template.Spec, ContainerGateway).Args {
		if strings.HasPrefix(a, "--monitor") {
			t.Errorf("gateway flag %s without a monitor root", a)
		}
	}
	sec := &corev1.Secret{}
	eventually(t, func() error { return k8s.Get(context.Background(), key(ns, "bot-stream-token"), sec) })
	for k := range sec.Data {
		if strings.HasPrefix(k, "monitor") {
			t.Errorf("Secret holds %s without a monitor root", k)
		}
	}
}

// TestMonitorKeyDataDuringRotation: with two monitor roots the Secret
// holds the key derived from each, the previous one under its own name; no
// roots, no monitor keys.
func TestMonitorKeyDataDuringRotation(t *testing.T) {
	ep := &voicev1alpha1.StreamEndpoint{}
	ep.Namespace, ep.Name = "tenant", "bots"
	cur := bytes.Repeat([]byte("c"), 32)
	prev := bytes.Repeat([]byte("p"), 32)
	data, err := monitorKeyData([][]byte{cur, prev}, ep)
	if err != nil {
		t.Fatal(err)
	}
	wantCur, _ := monitortoken.DeriveKey(cur, "tenant", "bots")
	wantPrev, _ := monitortoken.DeriveKey(prev, "tenant", "bots")
	if len(data) != 2 || !bytes.Equal(data[MonitorTokenSecretKey], wantCur) || !bytes.Equal(data[MonitorPreviousSecretKey], wantPrev) {
		t.Errorf("data %v", slices.Collect(maps.Keys(data)))
	}
	if data, err := monitorKeyData(nil, ep); err != nil || len(data) != 0 {
		t.Errorf("no roots: %v, %v", slices.Collect(maps.Keys(data)), err)
	}
	if _, err := monitorKeyData([][]byte{[]byte("short")}, ep); err == nil {
		t.Error("a short root key was accepted")
	}
	// The stream half and the monitor half never collide.
	stream, _ := streamKeyData(streamtoken.Keys{cur, prev}, ep)
	for k := range data {
		if _, dup := stream[k]; dup {
			t.Errorf("data key %s in both halves", k)
		}
	}
}
