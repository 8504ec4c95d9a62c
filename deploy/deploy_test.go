package deploy_test

// No Docker engine runs in CI, so these tests check what can be checked
// without one: the Dockerfile's structure, docker-compose.yml's services and
// every file it mounts, that the container configurations load and validate
// with Latch's own config package, that .ci/run builds with exactly the
// Dockerfile's flags, and the healthcheck program against real HTTP servers.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/latchauth/latch/config"
)

// root is the repository root, seen from this package's directory.
const root = ".."

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// Shell words: enough of POSIX sh to read a go build command line.

// shellCommands splits a script into simple commands at newlines, ;, &&, ||
// and |, each a list of words with quotes removed. Variables are left as
// written ("${VERSION}" stays "${VERSION}"), so two scripts compare by text.
func shellCommands(script string) ([][]string, error) {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var (
		cmds    [][]string
		words   []string
		word    strings.Builder
		inWord  bool
		flushed = func() {
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		}
		endCmd = func() {
			flushed()
			if len(words) > 0 {
				cmds = append(cmds, words)
				words = nil
			}
		}
	)
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(script[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			word.WriteString(script[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(script) {
					return nil, errors.New("unterminated double quote")
				}
				if script[i] == '"' {
					break
				}
				if script[i] == '\\' && i+1 < len(script) && strings.IndexByte("\"\\$`", script[i+1]) >= 0 {
					i++
				}
				word.WriteByte(script[i])
			}
		case c == '\\' && i+1 < len(script):
			i++
			word.WriteByte(script[i])
			inWord = true
		case c == '#' && !inWord:
			for i < len(script) && script[i] != '\n' {
				i++
			}
			endCmd()
		case c == ' ' || c == '\t':
			flushed()
		case c == '\n' || c == ';' || c == '|' || c == '&':
			endCmd()
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds, nil
}

// goBuild is one `go build` command line.
type goBuild struct {
	Env    []string // VAR=value words before `go`
	Flags  []string // every flag and its value, in order, without -o
	Output string
	Pkg    string
}

// valueFlags are the go build flags that take the next word as their value.
var valueFlags = map[string]bool{
	"-o": true, "-ldflags": true, "-gcflags": true, "-asmflags": true, "-tags": true,
	"-p": true, "-mod": true, "-buildmode": true, "-compiler": true, "-gccgoflags": true,
	"-installsuffix": true, "-modfile": true, "-overlay": true, "-pgo": true, "-pkgdir": true,
	"-toolexec": true,
}

// findGoBuilds returns every `go build` in script.
func findGoBuilds(t *testing.T, where, script string) []goBuild {
	t.Helper()
	cmds, err := shellCommands(script)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var out []goBuild
	for _, words := range cmds {
		i := 0
		var b goBuild
		for i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-") {
			b.Env = append(b.Env, words[i])
			i++
		}
		if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
			continue
		}
		for i += 2; i < len(words); i++ {
			w := words[i]
			switch {
			case w == "-o" && i+1 < len(words):
				b.Output = words[i+1]
				i++
			case strings.HasPrefix(w, "-o="):
				b.Output = strings.TrimPrefix(w, "-o=")
			case strings.HasPrefix(w, "-") && valueFlags[w] && i+1 < len(words):
				b.Flags = append(b.Flags, w+"="+words[i+1])
				i++
			case strings.HasPrefix(w, "-"):
				b.Flags = append(b.Flags, w)
			default:
				if b.Pkg != "" {
					t.Errorf("%s: go build with two packages: %q", where, words)
				}
				b.Pkg = w
			}
		}
		slices.Sort(b.Env)
		out = append(out, b)
	}
	return out
}

func buildOf(t *testing.T, where string, builds []goBuild, pkg string) goBuild {
	t.Helper()
	var found []goBuild
	for _, b := range builds {
		if b.Pkg == pkg {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want exactly one `go build ... %s`, found %d in %+v", where, pkg, len(found), builds)
	}
	return found[0]
}

// ---------------------------------------------------------------------------
// The Dockerfile.

type instruction struct {
	Cmd  string // upper-case keyword
	Args string // the rest, continuation lines joined
	Line int
}

type stage struct {
	From, Name string
	Body       []instruction
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	lines := strings.Split(readFile(t, "Dockerfile"), "\n")
	var (
		stages []stage
		cur    strings.Builder
		start  int
	)
	add := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		kw, args, _ := strings.Cut(text, " ")
		in := instruction{Cmd: strings.ToUpper(kw), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			s := stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				t.Errorf("Dockerfile:%d: %s before the first FROM", in.Line, in.Cmd)
			}
			return
		}
		s := &stages[len(stages)-1]
		s.Body = append(s.Body, in)
	}
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments, also inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		add()
	}
	add()
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Body {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s stage) one(t *testing.T, cmd string) instruction {
	t.Helper()
	all := s.all(cmd)
	if len(all) != 1 {
		t.Fatalf("stage %q: want exactly one %s, found %d", s.From, cmd, len(all))
	}
	return all[0]
}

// runScript is a RUN's shell script without its --mount and other options.
func runScript(in instruction) string {
	args := in.Args
	for strings.HasPrefix(args, "--") {
		_, rest, _ := strings.Cut(args, " ")
		args = strings.TrimSpace(rest)
	}
	return args
}

// execForm parses a JSON-array instruction argument (["a", "b"]).
func execForm(t *testing.T, in instruction, args string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil || len(out) == 0 {
		t.Fatalf("Dockerfile:%d: %s must use the exec form [\"...\"], got %s", in.Line, in.Cmd, args)
	}
	return out
}

// copyInstr is a COPY: its --from, --chown and sources and destination.
type copyInstr struct {
	From, Chown string
	Srcs        []string
	Dst         string
}

func parseCopy(in instruction) copyInstr {
	var c copyInstr
	f := strings.Fields(in.Args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
		switch k {
		case "from":
			c.From = v
		case "chown":
			c.Chown = v
		}
		f = f[1:]
	}
	if len(f) >= 2 {
		c.Srcs, c.Dst = f[:len(f)-1], f[len(f)-1]
	}
	return c
}

// dockerBuilds is the build stage's go build commands.
func dockerBuilds(t *testing.T, build stage) []goBuild {
	t.Helper()
	var builds []goBuild
	for _, in := range build.all("RUN") {
		builds = append(builds, findGoBuilds(t, fmt.Sprintf("Dockerfile:%d", in.Line), runScript(in))...)
	}
	return builds
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("want a two-stage Dockerfile (build, final), got %d stages", len(stages))
	}
	build, final := stages[0], stages[1]

	// The build stage: Go 1.26 on Debian bookworm, with gcc for cgo.
	if build.From != "golang:1.26-bookworm" || build.Name == "" {
		t.Errorf("build stage: FROM %s AS %q, want golang:1.26-bookworm AS <name>", build.From, build.Name)
	}
	builds := dockerBuilds(t, build)
	latch := buildOf(t, "Dockerfile", builds, ".")
	if !slices.Contains(latch.Env, "CGO_ENABLED=1") {
		t.Errorf("latch build: want CGO_ENABLED=1 (SQLite needs cgo), env %q", latch.Env)
	}
	checkReleaseFlags(t, "Dockerfile latch build", latch, true)
	hc := buildOf(t, "Dockerfile", builds, "./deploy/healthcheck")
	if !slices.Contains(hc.Env, "CGO_ENABLED=0") {
		t.Errorf("healthcheck build: want CGO_ENABLED=0 (a static binary), env %q", hc.Env)
	}
	checkReleaseFlags(t, "Dockerfile healthcheck build", hc, false)
	if !slices.ContainsFunc(build.all("ARG"), func(in instruction) bool { return strings.HasPrefix(in.Args, "VERSION") }) {
		t.Error("build stage: no ARG VERSION for -X main.version=${VERSION}")
	}

	// The final stage: distroless with glibc, for the cgo binary.
	if !strings.HasPrefix(final.From, "gcr.io/distroless/base-debian12") {
		t.Errorf("final stage: FROM %s, want gcr.io/distroless/base-debian12 (glibc for the cgo binary)", final.From)
	}
	if final.Name == build.Name {
		t.Error("the final stage reuses the build stage's name")
	}
	// COPY: the binaries from the build stage's outputs, files from the
	// context must exist and not be excluded by .dockerignore.
	ignored := dockerignore(t)
	copied := map[string]copyInstr{} // destination -> copy
	for _, in := range final.all("COPY") {
		c := parseCopy(in)
		if len(c.Srcs) != 1 {
			t.Fatalf("Dockerfile:%d: COPY %q: want one source and a destination", in.Line, in.Args)
		}
		copied[c.Dst] = c
		switch c.From {
		case build.Name:
		case "":
			src := c.Srcs[0]
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("Dockerfile:%d: COPY %s: %v", in.Line, src, err)
			}
			if p := ignoredBy(ignored, src); p != "" {
				t.Errorf("Dockerfile:%d: COPY %s, but .dockerignore excludes it (%s)", in.Line, src, p)
			}
		default:
			t.Errorf("Dockerfile:%d: COPY --from=%s, want --from=%s", in.Line, c.From, build.Name)
		}
	}
	binary := func(dst string, b goBuild) {
		c, ok := copied[dst]
		if !ok || c.From != build.Name || c.Srcs[0] != b.Output {
			t.Errorf("final stage: want COPY --from=%s %s %s, got %+v", build.Name, b.Output, dst, c)
		}
	}
	binary("/usr/local/bin/latch", latch)
	binary("/usr/local/bin/healthcheck", hc)
	if c, ok := copied["/etc/latch/config.yaml"]; !ok || c.Srcs[0] != "deploy/config.yaml" {
		t.Errorf("final stage: want COPY deploy/config.yaml /etc/latch/config.yaml, got %+v", c)
	}
	if c, ok := copied["/data"]; !ok || c.Chown != "65532:65532" {
		t.Errorf("final stage: want /data created owned by 65532:65532 (COPY --chown), got %+v", c)
	}

	user := final.one(t, "USER").Args
	if uid, _, _ := strings.Cut(user, ":"); uid != "65532" && uid != "nonroot" {
		t.Errorf("USER %s, want the non-root 65532 (distroless nonroot)", user)
	}
	if v := final.one(t, "VOLUME"); v.Args != "/data" && v.Args != `["/data"]` {
		t.Errorf("VOLUME %s, want /data", v.Args)
	}
	if e := final.one(t, "EXPOSE"); e.Args != "8080" && e.Args != "8080/tcp" {
		t.Errorf("EXPOSE %s, want 8080", e.Args)
	}
	hcIn := final.one(t, "HEALTHCHECK")
	opts, cmd, ok := strings.Cut(hcIn.Args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s: want HEALTHCHECK [options] CMD [...]", hcIn.Args)
	}
	for _, o := range []string{"--interval=", "--timeout=", "--retries="} {
		if !strings.Contains(opts, o) {
			t.Errorf("HEALTHCHECK: set %s", o)
		}
	}
	if argv := execForm(t, hcIn, cmd); argv[0] != "/usr/local/bin/healthcheck" {
		t.Errorf("HEALTHCHECK CMD %q, want the exec form of /usr/local/bin/healthcheck (distroless has no shell)", argv)
	}
	ep := final.one(t, "ENTRYPOINT")
	if argv := execForm(t, ep, ep.Args); !slices.Equal(argv, []string{"/usr/local/bin/latch"}) {
		t.Errorf("ENTRYPOINT %q, want [\"/usr/local/bin/latch\"]", argv)
	}
	cmdIn := final.one(t, "CMD")
	if argv := execForm(t, cmdIn, cmdIn.Args); !slices.Equal(argv, []string{"serve", "--config", "/etc/latch/config.yaml"}) {
		t.Errorf("CMD %q, want serve --config /etc/latch/config.yaml", argv)
	}
}

// checkReleaseFlags: -trimpath, stripped, and the version for latch.
func checkReleaseFlags(t *testing.T, where string, b goBuild, version bool) {
	t.Helper()
	if !slices.Contains(b.Flags, "-trimpath") {
		t.Errorf("%s: no -trimpath in %q", where, b.Flags)
	}
	i := slices.IndexFunc(b.Flags, func(f string) bool { return strings.HasPrefix(f, "-ldflags=") })
	if i < 0 {
		t.Errorf("%s: no -ldflags in %q", where, b.Flags)
		return
	}
	ld := strings.Fields(strings.TrimPrefix(b.Flags[i], "-ldflags="))
	if !slices.Contains(ld, "-s") || !slices.Contains(ld, "-w") {
		t.Errorf("%s: -ldflags %q, want -s -w", where, ld)
	}
	if version {
		j := slices.Index(ld, "-X")
		if j < 0 || j+1 >= len(ld) || !strings.HasPrefix(ld[j+1], "main.version=") {
			t.Errorf("%s: -ldflags %q, want -X main.version=...", where, ld)
		}
	}
}

// dockerignore is the list of patterns in .dockerignore.
func dockerignore(t *testing.T) []string {
	var out []string
	for _, l := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// ignoredBy returns the .dockerignore pattern that excludes path or one of
// its parent directories, or "". Like Docker's matcher, a pattern matches
// the whole path from the context root ("*.db" only at the root, "**/*.db"
// anywhere); "!" exceptions are not supported (TestDockerignore refuses
// them).
func ignoredBy(patterns []string, path string) string {
	for _, p := range patterns {
		re := dockerignoreRegexp(strings.TrimPrefix(filepath.Clean(p), "/"))
		for q := filepath.Clean(path); q != "." && q != "/"; q = filepath.Dir(q) {
			if re.MatchString(q) {
				return p
			}
		}
	}
	return ""
}

// dockerignoreRegexp translates a pattern: "**" any number of directories,
// "*" and "?" within one path element.
func dockerignoreRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case strings.HasPrefix(pat[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(pat[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func TestDockerignore(t *testing.T) {
	ignored := dockerignore(t)
	for _, p := range ignored {
		if strings.HasPrefix(p, "!") || strings.ContainsAny(p, "[\\") {
			t.Errorf(".dockerignore: %q: the test's matcher does not handle it; extend ignoredBy", p)
		}
	}
	// What the build stage needs must be in the context.
	for _, keep := range []string{"go.mod", "go.sum", "main.go", "cmd_root.go", "server/routes.go", "templates/templates.go", "deploy/healthcheck/main.go", "deploy/config.yaml"} {
		if p := ignoredBy(ignored, keep); p != "" {
			t.Errorf(".dockerignore excludes %s (%s), which the image build needs", keep, p)
		}
	}
	// What must never reach the daemon.
	for _, drop := range []string{".git", ".git/config", "latch", "latch.db", "latch.db-wal", "storage/x.db-shm", "server/server.test"} {
		if ignoredBy(ignored, drop) == "" {
			t.Errorf(".dockerignore does not exclude %s", drop)
		}
	}
}

// TestCIBuildsLikeDockerfile: .ci/run's build step uses exactly the
// Dockerfile's environment and flags, so CI proves the image's build works.
func TestCIBuildsLikeDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	docker := dockerBuilds(t, stages[0])
	ci := findGoBuilds(t, ".ci/run", readFile(t, ".ci/run"))
	for _, pkg := range []string{".", "./deploy/healthcheck"} {
		d, c := buildOf(t, "Dockerfile", docker, pkg), buildOf(t, ".ci/run", ci, pkg)
		if !slices.Equal(d.Env, c.Env) {
			t.Errorf("go build %s: environment differs: Dockerfile %q, .ci/run %q", pkg, d.Env, c.Env)
		}
		if !slices.Equal(d.Flags, c.Flags) {
			t.Errorf("go build %s: flags differ:\n  Dockerfile %q\n  .ci/run    %q", pkg, d.Flags, c.Flags)
		}
	}
	// The version variable is set in .ci/run and the binary's output checked.
	run := readFile(t, ".ci/run")
	if !strings.Contains(run, "VERSION=") || !strings.Contains(run, " version)") {
		t.Error(".ci/run: want VERSION=... set and the built binary's `version` output checked")
	}
	// The build step runs before the tests.
	if strings.Index(run, "-o /tmp/latch-ci .") > strings.Index(run, "go test ") {
		t.Error(".ci/run: the build step must come before the go test lines")
	}
}

// ---------------------------------------------------------------------------
// docker-compose.yml.

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	Profiles    []string          `yaml:"profiles"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Restart         string `yaml:"restart"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context string            `yaml:"context"`
	Args    map[string]string `yaml:"args"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(readFile(t, "docker-compose.yml")), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// port is one published port, "127.0.0.1:8080:8080".
type port struct {
	HostIP          string
	Host, Container int
}

func parsePort(t *testing.T, svc, s string) port {
	t.Helper()
	s = strings.TrimSuffix(s, "/tcp")
	f := strings.Split(s, ":")
	if len(f) != 3 {
		t.Fatalf("%s: port %q must be IP:HOST:CONTAINER (bound to an address, never all interfaces)", svc, s)
	}
	h, err1 := strconv.Atoi(f[1])
	c, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: port %q: want numbers", svc, s)
	}
	return port{HostIP: f[0], Host: h, Container: c}
}

// mount is one entry of a service's volumes (short syntax).
type mount struct {
	Source, Target string
	ReadOnly       bool
	Bind           bool // a path on the host, not a named volume
}

func parseMount(t *testing.T, svc, s string) mount {
	t.Helper()
	f := strings.Split(s, ":")
	if len(f) < 2 || len(f) > 3 {
		t.Fatalf("%s: volume %q: want SOURCE:TARGET[:ro]", svc, s)
	}
	m := mount{Source: f[0], Target: f[1]}
	if len(f) == 3 {
		m.ReadOnly = f[2] == "ro"
	}
	m.Bind = strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "/")
	return m
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"latch", "latch-postgres", "postgres"}; !slices.Equal(names, want) {
		t.Fatalf("services %q, want %q", names, want)
	}

	hostPorts := map[int]string{}
	for _, name := range names {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			// Published ports: loopback only, never twice the same host port
			// (latch and latch-postgres run side by side in the profile).
			for _, p := range s.Ports {
				pp := parsePort(t, name, p)
				if pp.HostIP != "127.0.0.1" {
					t.Errorf("port %q is published on %s, want 127.0.0.1", p, pp.HostIP)
				}
				if other, dup := hostPorts[pp.Host]; dup {
					t.Errorf("host port %d is published by %s too", pp.Host, other)
				}
				hostPorts[pp.Host] = name
			}
			// Mounts: named volumes are declared, host files exist.
			for _, v := range s.Volumes {
				m := parseMount(t, name, v)
				if !m.Bind {
					if _, ok := c.Volumes[m.Source]; !ok {
						t.Errorf("volume %q is not declared under the top-level volumes", m.Source)
					}
					continue
				}
				if !strings.HasPrefix(m.Source, "./") {
					t.Errorf("bind mount %q: want a path relative to the repository (./...)", m.Source)
				}
				if _, err := os.Stat(filepath.Join(root, m.Source)); err != nil {
					t.Errorf("bind mount %q: %v", m.Source, err)
				}
				if !m.ReadOnly {
					t.Errorf("bind mount %q: want it read-only (:ro)", v)
				}
			}
			if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 {
				t.Fatalf("no healthcheck")
			}
			if s.Healthcheck.Interval == "" || s.Healthcheck.Timeout == "" || s.Healthcheck.Retries == 0 {
				t.Errorf("healthcheck: set interval, timeout and retries: %+v", *s.Healthcheck)
			}
			if s.Restart != "unless-stopped" {
				t.Errorf("restart %q, want unless-stopped", s.Restart)
			}
		})
	}
	for n := range c.Volumes {
		used := false
		for _, s := range c.Services {
			for _, v := range s.Volumes {
				used = used || strings.HasPrefix(v, n+":")
			}
		}
		if !used {
			t.Errorf("volume %q is declared but no service mounts it", n)
		}
	}
}

// TestComposeProfiles: latch runs by default; the postgres profile adds
// PostgreSQL and a Latch that waits for it to be healthy.
func TestComposeProfiles(t *testing.T) {
	c := loadCompose(t)
	if p := c.Services["latch"].Profiles; len(p) != 0 {
		t.Errorf("latch: profiles %q, want none (it runs by default)", p)
	}
	for _, n := range []string{"postgres", "latch-postgres"} {
		if p := c.Services[n].Profiles; !slices.Equal(p, []string{"postgres"}) {
			t.Errorf("%s: profiles %q, want [postgres]", n, p)
		}
	}
	pg := c.Services["postgres"]
	if !strings.HasPrefix(pg.Image, "postgres:16") {
		t.Errorf("postgres: image %q, want postgres:16", pg.Image)
	}
	if pg.Healthcheck == nil || !strings.Contains(strings.Join(pg.Healthcheck.Test, " "), "pg_isready") {
		t.Errorf("postgres: want a pg_isready healthcheck")
	}
	if len(pg.Ports) != 0 {
		t.Errorf("postgres: ports %q; keep the database on the compose network", pg.Ports)
	}
	for _, k := range []string{"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} {
		if pg.Environment[k] == "" {
			t.Errorf("postgres: environment %s is not set", k)
		}
	}
	if !slices.ContainsFunc(pg.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/var/lib/postgresql/data") }) {
		t.Errorf("postgres: want a volume on /var/lib/postgresql/data, got %q", pg.Volumes)
	}
	lp := c.Services["latch-postgres"]
	if d, ok := lp.DependsOn["postgres"]; !ok || d.Condition != "service_healthy" {
		t.Errorf("latch-postgres: want depends_on postgres with condition service_healthy, got %+v", lp.DependsOn)
	}
}

// TestComposeLatchServices checks each Latch service against the image and
// against the configuration it mounts, loaded and validated by Latch's own
// config package exactly as `latch serve` would (file, then environment).
func TestComposeLatchServices(t *testing.T) {
	c := loadCompose(t)
	final := parseDockerfile(t)[1]
	hcIn := final.one(t, "HEALTHCHECK")
	_, hcCmd, _ := strings.Cut(hcIn.Args, "CMD ")
	imageHealthcheck := execForm(t, hcIn, hcCmd)

	for _, name := range []string{"latch", "latch-postgres"} {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			if s.Build == nil || s.Build.Context != "." {
				t.Errorf("build: want context ., got %+v", s.Build)
			}
			if len(s.Command) != 3 || s.Command[0] != "serve" || s.Command[1] != "--config" {
				t.Fatalf("command %q, want serve --config FILE", s.Command)
			}
			cfgPath := s.Command[2]
			if test := s.Healthcheck.Test; test[0] != "CMD" || !slices.Equal(test[1:], imageHealthcheck) {
				t.Errorf("healthcheck %q, want [CMD %s] as in the Dockerfile (no shell in the image)", test, strings.Join(imageHealthcheck, " "))
			}
			if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= 15*time.Second {
				t.Errorf("stop_grace_period %q: want more than the 15s shutdown_timeout", s.StopGracePeriod)
			}

			// The mounted configuration.
			var src string
			var dataVolume bool
			for _, v := range s.Volumes {
				m := parseMount(t, name, v)
				if m.Target == cfgPath && m.Bind {
					src = m.Source
				}
				dataVolume = dataVolume || (m.Target == "/data" && !m.Bind)
			}
			if src == "" {
				t.Fatalf("no file mounted at %s, the --config of its command", cfgPath)
			}
			f, err := config.Load(filepath.Join(root, src))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.ApplyEnv(func(k string) string { return s.Environment[k] }); err != nil {
				t.Fatal(err)
			}
			if err := f.Validate(); err != nil {
				t.Fatalf("%s does not validate:\n%v", src, err)
			}
			if len(s.Ports) != 1 {
				t.Fatalf("ports %q, want one", s.Ports)
			}
			p := parsePort(t, name, s.Ports[0])

			// Listen on all interfaces of the container, on the published port.
			host, lport, err := net.SplitHostPort(f.Listen)
			if err != nil {
				t.Fatal(err)
			}
			if host != "0.0.0.0" && host != "" {
				t.Errorf("%s: listen %s: a container must listen on 0.0.0.0 to be reachable through its published port", src, f.Listen)
			}
			if lport != strconv.Itoa(p.Container) {
				t.Errorf("%s: listen port %s, but the service publishes container port %d", src, lport, p.Container)
			}
			// The issuer is the URL a browser on the host uses: the
			// published address and port, loopback, so plain http is valid
			// without insecure_http.
			u, err := url.Parse(f.Issuer)
			if err != nil {
				t.Fatal(err)
			}
			if want := net.JoinHostPort(p.HostIP, strconv.Itoa(p.Host)); u.Host != want {
				t.Errorf("%s: issuer %s, but the service is published on %s", src, f.Issuer, want)
			}
			if f.InsecureHTTP {
				t.Errorf("%s: insecure_http is true; the loopback issuer does not need it", src)
			}
			if f.TLS.CertFile != "" {
				t.Errorf("%s: TLS set, but the healthcheck speaks plain http", src)
			}

			switch f.Database.Driver {
			case "sqlite":
				if !strings.HasPrefix(f.Database.DSN, "/data/") {
					t.Errorf("%s: database.dsn %q, want a file on the /data volume", src, f.Database.DSN)
				}
				if !dataVolume {
					t.Errorf("a SQLite service needs a named volume on /data")
				}
			case "postgres":
				checkPostgresDSN(t, src, f.Database.DSN, c)
				if d, ok := s.DependsOn["postgres"]; !ok || d.Condition != "service_healthy" {
					t.Errorf("on postgres but does not wait for it to be healthy")
				}
			}
		})
	}
	if f, _ := config.Load("config.yaml"); f.Database.Driver != "sqlite" {
		t.Errorf("deploy/config.yaml (latch): driver %q, want sqlite", f.Database.Driver)
	}
	if f, _ := config.Load("config.postgres.yaml"); f.Database.Driver != "postgres" {
		t.Errorf("deploy/config.postgres.yaml (latch-postgres): driver %q, want postgres", f.Database.Driver)
	}
}

// checkPostgresDSN: a keyword DSN that names the compose service and the
// credentials in its POSTGRES_* variables.
func checkPostgresDSN(t *testing.T, src, dsn string, c composeFile) {
	t.Helper()
	kv := map[string]string{}
	for _, f := range strings.Fields(dsn) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("%s: database.dsn %q: want key=value words", src, dsn)
		}
		kv[k] = v
	}
	pg, ok := c.Services[kv["host"]]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:") {
		t.Errorf("%s: DSN host %q is not the compose file's postgres service", src, kv["host"])
		return
	}
	for dsnKey, env := range map[string]string{"user": "POSTGRES_USER", "password": "POSTGRES_PASSWORD", "dbname": "POSTGRES_DB"} {
		if kv[dsnKey] != pg.Environment[env] {
			t.Errorf("%s: DSN %s=%q, but the postgres service has %s=%q", src, dsnKey, kv[dsnKey], env, pg.Environment[env])
		}
	}
	if kv["port"] != "" && kv["port"] != "5432" {
		t.Errorf("%s: DSN port %s, want 5432", src, kv["port"])
	}
}

// TestDeployConfigs: every configuration in deploy/ loads and validates
// with Latch's own config package, and fits a container.
func TestDeployConfigs(t *testing.T) {
	files, err := filepath.Glob("config*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("want deploy/config.yaml and deploy/config.postgres.yaml, got %q (%v)", files, err)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			f, err := config.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Validate(); err != nil {
				t.Fatalf("does not validate:\n%v", err)
			}
			if host, _, _ := net.SplitHostPort(f.Listen); host != "0.0.0.0" {
				t.Errorf("listen %s, want 0.0.0.0:PORT in a container", f.Listen)
			}
			u, _ := url.Parse(f.Issuer)
			if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && (ip == nil || !ip.IsLoopback()) {
				t.Errorf("issuer %s: an http issuer must be loopback (the published 127.0.0.1 port)", f.Issuer)
			}
			// A container takes the same LATCH_* overrides as any process.
			if err := f.ApplyEnv(func(k string) string {
				return map[string]string{"LATCH_ISSUER": "https://auth.example.com"}[k]
			}); err != nil || f.Validate() != nil || f.Issuer != "https://auth.example.com" {
				t.Errorf("LATCH_ISSUER override: err %v, issuer %s", err, f.Issuer)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// The healthcheck program and the binaries, built as the Dockerfile builds them.

// buildHealthcheck builds the healthcheck program into dir with the
// test's own toolchain settings, so the packages it needs come from the
// build cache of this test binary. The Dockerfile's flags (-trimpath,
// -ldflags, CGO_ENABLED=0) are not repeated here: TestDockerfile and
// TestCIBuildsLikeDockerfile compare them with .ci/run's build line, and
// .ci/run builds with them. Rebuilding with them here cost a cold
// `go test ./...` minutes (a second, uncached cgo build of SQLite for the
// latch binary).
func buildHealthcheck(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out := filepath.Join(dir, "healthcheck")
	cmd := exec.Command(gobin, "build", "-o", out, "./deploy/healthcheck")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./deploy/healthcheck: %v\n%s", err, msg)
	}
	return out
}

func runHealthcheck(t *testing.T, bin string, args ...string) (int, string, time.Duration) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), took
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), took
	default:
		t.Fatal(err)
		return -1, "", 0
	}
}

func TestHealthcheck(t *testing.T) {
	bin := buildHealthcheck(t, t.TempDir())

	// Its default URL is the container's readiness endpoint.
	_, usage, _ := runHealthcheck(t, bin, "-h")
	f, err := config.Load("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(f.Listen)
	if want := fmt.Sprintf(`(default "http://127.0.0.1:%s/health/ready")`, p); !strings.Contains(usage, want) {
		t.Errorf("healthcheck -h does not show %s:\n%s", want, usage)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy/healthcheck/main.go")); err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		status = http.StatusOK
		hits   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.Method+" "+r.URL.Path)
		code := status
		mu.Unlock()
		w.WriteHeader(code)
	}))
	defer srv.Close()
	ready := srv.URL + "/health/ready"

	if code, out, _ := runHealthcheck(t, bin, "-url", ready); code != 0 {
		t.Errorf("ready server: exit %d, want 0: %s", code, out)
	}
	mu.Lock()
	if !slices.Equal(hits, []string{"GET /health/ready"}) {
		t.Errorf("requests %q, want one GET /health/ready", hits)
	}
	status = http.StatusServiceUnavailable
	mu.Unlock()
	if code, out, _ := runHealthcheck(t, bin, "-url", ready); code != 1 || !strings.Contains(out, "503") {
		t.Errorf("not ready (503): exit %d, want 1: %s", code, out)
	}

	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/health/ready"
	ln.Close()
	if code, out, _ := runHealthcheck(t, bin, "-url", closed); code != 1 {
		t.Errorf("nothing listening: exit %d, want 1: %s", code, out)
	}

	// A server that hangs: the timeout ends the check.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	code, out, took := runHealthcheck(t, bin, "-url", hang.URL+"/health/ready", "-timeout", "300ms")
	if code != 1 || took > 2*time.Second {
		t.Errorf("hanging server: exit %d after %s, want 1 within the timeout: %s", code, took, out)
	}
}
