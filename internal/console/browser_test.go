package console_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	voicev1alpha1 "github.com/callfleet/callfleet/api/v1alpha1"
	"github.com/callfleet/callfleet/internal/console"
	"github.com/callfleet/callfleet/internal/gateway"
	"github.com/callfleet/callfleet/internal/testenv"
	"github.com/callfleet/callfleet/test/harness"
	"github.com/callfleet/callfleet/test/harness/handofftest"
)

// wait bounds every wait in the browser test: generous, because a loaded
// 2-core box is slow, and never an assertion about speed.
const wait = 3 * time.Minute

const floor = "floor" // the supervisors' namespace

// TestConsoleInBrowser drives the console in real headless Chromium,
// against the real pieces: kube-apiserver (envtest, RBAC on), piopiy-sim,
// the Call, AgentPool and handoff controllers, the stream gateway and the
// echo bot as a process. A supervisor signs in with a ServiceAccount token,
// watches a Call go InProgress on the live board, listens in (the page's
// own audio pipeline measures sound), reads the assist feed, hands the call
// off from the page (the board shows HandedOff), keeps hearing it after the
// handoff, and hangs up from the page (the sim ends the call). A user
// without RBAC sees 403; no token and an expired sign-in get 401; a monitor
// token for one call never opens another.
func TestConsoleInBrowser(t *testing.T) {
	chromium := findChromium(t)
	monitorKey := randomKey(t)
	env, err := handofftest.Start(handofftest.Options{
		Namespace: floor,
		Gateway: func(o *gateway.RunOptions) {
			o.BotURL = startEchoBot(t)
			// Derives its endpoint's key from the root, as the console does.
			o.MonitorRootKey = monitorKey
		},
	})
	if err != nil {
		if env != nil {
			env.Stop()
		}
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	ctx := context.Background()
	k8s := env.K8s
	cs := kubernetes.NewForConfigOrDie(env.H.Env.Config)

	// The console runs as its own ServiceAccount with the chart's rules.
	consoleCfg := consoleIdentity(t, ctx, env.H.Env.Config, k8s, cs)
	applyFile(t, ctx, k8s, "examples/console/supervisor-rbac.yaml", floor)
	mustCreate(t, ctx, k8s, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: floor, Name: "outsider"}})
	supervisor := saToken(t, ctx, cs, floor, "supervisor")
	outsider := saToken(t, ctx, cs, floor, "outsider")

	var skew atomic.Int64 // moves the console's clock (sign-in expiry)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	started := make(chan struct{})
	cctx, stopConsole := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- console.Run(cctx, consoleCfg, console.RunOptions{
			Options: console.Options{
				SessionKey: randomKey(t), MonitorRootKey: monitorKey, Logger: logr.Discard(),
				Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
			},
			Listener: ln,
			Started:  func(net.Addr) { close(started) },
		})
	}()
	t.Cleanup(func() {
		stopConsole()
		if err := <-done; err != nil {
			t.Logf("console: %v", err)
		}
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("console exited: %v", err)
	case <-time.After(wait):
		t.Fatal("console did not start")
	}

	pool := env.NewPool("agents", 1)
	mustCreate(t, ctx, k8s, pool)
	alice := env.NewCall("alice", pool.Name, func(c *voicev1alpha1.Call) { c.Spec.Handoff.KeepStreaming = true })

	// No token, a token the cluster does not know: 401 and nothing shown.
	for name, tok := range map[string]string{"no token": "", "unknown token": "not-a-token"} {
		if code, body := get(t, base+"/ns/"+floor, tok); code != http.StatusUnauthorized || strings.Contains(body, "alice") {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}

	browser := startBrowser(t, chromium)
	board := newTab(t, browser)
	t.Log("signing in as supervisor")
	signIn(t, board, base, supervisor)
	t.Log("signed in")
	if os.Getenv("CONSOLE_DEBUG") != "" {
		t.Logf("console %s token %s", base, supervisor)
		t.Logf("page: %s", value(t, board, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 1500)`)))
	}
	mustCreate(t, ctx, k8s, alice)
	waitJS(t, board, "the board shows alice InProgress", phaseOf("alice"), func(s string) bool { return s == "InProgress" })

	// The call page, in a second tab of the same signed-in browser.
	callTab := newTab(t, board)
	run(t, callTab, chromedp.Navigate(base+"/ns/"+floor+"/calls/alice"), chromedp.WaitVisible(chromedp.CSS("#listen")))
	t.Log("call page open; listening")
	run(t, callTab, chromedp.Click(chromedp.CSS("#listen")))
	var st audioStats
	waitJSON(t, callTab, "sound from the call and the bot in the page's audio pipeline", "window.callfleetAudio", &st,
		func() bool { return st.Loud[0] > 10 && st.Loud[1] > 0 })
	waitJS(t, callTab, "assist lines in the feed", `[...document.querySelectorAll('#feed li.assist')].map(li => li.textContent).join('|')`,
		func(s string) bool { return strings.Contains(s, "the bot greets") })
	waitJS(t, callTab, "transcript lines in the feed", `document.querySelectorAll('#feed li.transcript').length.toString()`,
		func(s string) bool { return s != "0" && s != "" })

	t.Logf("heard %+v", st)
	// Hand off now, from the page: the board shows HandedOff, and the call
	// is still heard (customer and agent, listenMode both).
	run(t, callTab, chromedp.SetValue(chromedp.CSS("#pool"), pool.Name), chromedp.Click(chromedp.CSS("#handoff")))
	waitJS(t, callTab, "the page says the handoff was asked for", doneText, func(s string) bool { return s == "Done: handoff." })
	waitJS(t, board, "the board shows alice HandedOff", phaseOf("alice"), func(s string) bool { return s == "HandedOff" })
	saveScreenshot(t, value(t, board, chromedp.FullScreenshot(100)))
	// The page kept listening through the handoff (actions go by fetch).
	heard := st.Loud[0]
	waitJSON(t, callTab, "sound after the handoff", "window.callfleetAudio", &st, func() bool { return st.Loud[0] > heard+10 })

	t.Logf("after the handoff heard %+v", st)
	// A monitor token for alice never opens another call's socket.
	monitorURL := monitorTokenURL(t, base, supervisor, "alice")
	other := strings.Replace(monitorURL, "/"+floor+"/alice?", "/"+floor+"/bob?", 1)
	if code := wsStatus(t, other); code != http.StatusForbidden {
		t.Errorf("alice's monitor token on bob's socket: %d, want 403", code)
	}

	// Hang up, from the page: the call ends at the sim.
	run(t, callTab, chromedp.Click(chromedp.CSS("#hangup")))
	waitJS(t, callTab, "the page says the hang-up was asked for", doneText, func(s string) bool { return s == "Done: hangup." })
	call := &voicev1alpha1.Call{}
	if err := harnessWait(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(alice), call); err != nil {
			return err
		}
		if r, ok := env.SimCall(call.Spec.To); !ok || r.State != "ended" {
			return fmt.Errorf("sim call %+v", r.State)
		}
		return nil
	}); err != nil {
		t.Fatalf("hang up from the page: %v", err)
	}
	if !call.Spec.Hangup {
		t.Error("spec.hangup not set by the page")
	}

	t.Log("hung up at the sim")
	// A user the cluster knows but who may not read the namespace: 403 in
	// the browser, and nothing of it shown.
	stranger := newTab(t, browser, chromedp.WithNewBrowserContext())
	signIn(t, stranger, base, outsider)
	status := value(t, stranger, chromedp.Text(chromedp.CSS("#status")))
	page := value(t, stranger, chromedp.OuterHTML(chromedp.CSS("html")))
	if status != "403" || strings.Contains(page, "alice") {
		t.Errorf("outsider sees status %q (alice shown: %v), want 403", status, strings.Contains(page, "alice"))
	}
	if code, _ := get(t, base+"/ns/"+floor, outsider); code != http.StatusForbidden {
		t.Errorf("outsider's board: %d, want 403", code)
	}

	// The supervisor's sign-in expires: the next page is 401, sign in again.
	skew.Store(int64(console.DefaultSessionTTL + time.Minute))
	run(t, board, chromedp.Navigate(base+"/ns/"+floor), chromedp.WaitVisible(chromedp.CSS("#login")))
	login := value(t, board, chromedp.Text(chromedp.CSS("#error")))
	if !strings.Contains(login, "Sign in") {
		t.Errorf("after expiry the board says %q, want the sign-in page", login)
	}
}

type audioStats struct {
	Frames [2]int `json:"frames"`
	Loud   [2]int `json:"loud"`
	Lines  int    `json:"lines"`
	Rate   int    `json:"rate"`
	State  string `json:"state"`
}

const doneText = `(() => { const p = document.querySelector('#done'); return p ? p.textContent : ''; })()`

func phaseOf(name string) string {
	return fmt.Sprintf(`(() => { const td = document.querySelector('#calls tr[data-name=%q] td.phase'); return td ? td.textContent : ''; })()`, name)
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium: run hack/install-chromium.sh (make test does) or set CHROMIUM")
	return ""
}

func startBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true), // WebAudio runs; nothing reaches a speaker
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	t.Cleanup(cancel)
	b, cancelB := chromedp.NewContext(alloc)
	t.Cleanup(cancelB)
	if err := chromedp.Do(b); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return b
}

// newTab opens a tab. Its first action runs without a deadline: chromedp
// ties a tab's life to the context of the first action run on it.
func newTab(t *testing.T, parent context.Context, opts ...chromedp.ContextOption) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tab
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

func signIn(t *testing.T, tab context.Context, base, token string) {
	t.Helper()
	run(t, tab, chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SetValue(chromedp.CSS(`input[name=token]`), token),
		chromedp.SetValue(chromedp.CSS(`input[name=namespace]`), floor),
		chromedp.Click(chromedp.CSS(`#login button`)),
		chromedp.WaitReady(chromedp.CSS("body[data-page], #status")))
}

// waitJS evaluates expr in the tab until ok accepts its string value.
func waitJS(t *testing.T, tab context.Context, what, expr string, ok func(string) bool) {
	t.Helper()
	var last string
	end := time.Now().Add(wait)
	for {
		ectx, cancel := context.WithTimeout(tab, 10*time.Second)
		v, err := chromedp.Run(ectx, chromedp.Evaluate[string](expr))
		cancel()
		if err == nil {
			last = v
			if ok(v) {
				return
			}
		}
		if time.Now().After(end) {
			ectx, cancel := context.WithTimeout(tab, 10*time.Second)
			page, _ := chromedp.Run(ectx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 1500)`))
			cancel()
			t.Fatalf("timed out waiting for %s (last %q); the page:\n%s", what, last, page)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitJSON evaluates expr into v until ok.
func waitJSON(t *testing.T, tab context.Context, what, expr string, v any, ok func() bool) {
	t.Helper()
	end := time.Now().Add(wait)
	for {
		ectx, cancel := context.WithTimeout(tab, 10*time.Second)
		s, err := chromedp.Run(ectx, chromedp.Evaluate[string]("JSON.stringify("+expr+")"))
		cancel()
		if err == nil && json.Unmarshal([]byte(s), v) == nil && ok() {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s (last %+v, err %v)", what, v, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func saveScreenshot(t *testing.T, png []byte) {
	t.Helper()
	path := os.Getenv("CALLFLEET_CONSOLE_SCREENSHOT")
	if path == "" {
		path = filepath.Join(os.TempDir(), "callfleet-console-board.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("board screenshot: %s (%d bytes)", path, len(png))
}

func get(t *testing.T, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func monitorTokenURL(t *testing.T, base, token, call string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/ns/"+floor+"/calls/"+call+"/monitor", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out struct{ URL string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("monitor token: %d %v", resp.StatusCode, err)
	}
	if _, err := url.Parse(out.URL); err != nil {
		t.Fatal(err)
	}
	return out.URL
}

func wsStatus(t *testing.T, u string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, nil)
	if err == nil {
		_ = c.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

func harnessWait(cond func() error) error { return handofftest.Eventually(wait, cond) }

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCreate(t *testing.T, ctx context.Context, k8s client.Client, obj client.Object) {
	t.Helper()
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// consoleIdentity gives the console a ServiceAccount bound to the chart's
// console ClusterRole and returns a config that uses its token only.
func consoleIdentity(t *testing.T, ctx context.Context, admin *rest.Config, k8s client.Client, cs kubernetes.Interface) *rest.Config {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "charts/callfleet/files/console-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, k8s, role)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: harness.AccountNamespace, Name: "callfleet-console"}}
	mustCreate(t, ctx, k8s, sa)
	mustCreate(t, ctx, k8s, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "callfleet-console"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: sa.Namespace, Name: sa.Name}},
	})
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = saToken(t, ctx, cs, sa.Namespace, sa.Name)
	return cfg
}

// saToken asks the apiserver for a ServiceAccount token (TokenRequest
// needs no controller-manager).
func saToken(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// applyFile creates every object of a YAML file in namespace ns.
func applyFile(t *testing.T, ctx context.Context, k8s client.Client, rel, ns string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := dec.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil || len(u.Object) == 0 {
			continue
		}
		u.SetNamespace(ns)
		if err := k8s.Create(ctx, u); err != nil {
			t.Fatalf("%s: %s %s: %v", rel, u.GetKind(), u.GetName(), err)
		}
	}
}

// startEchoBot builds and runs examples/bots/echo, returning its ws:// URL.
func startEchoBot(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "echo")
	build := exec.Command("go", "build", "-o", bin, "./examples/bots/echo")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the echo bot: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--handoff-after-turns", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "echo bot listening" {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return "ws://" + l.Addr + "/"
		}
	}
	t.Fatal("the echo bot did not say where it listens")
	return ""
}
