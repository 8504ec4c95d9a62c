package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// cli is what every command shares: the process's environment, input and
// output.
type cli struct {
	getenv func(string) string
	// stdin is where passwords and chosen secrets are read: without echo
	// when it is a terminal, one line otherwise.
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	configPath string
}

// run executes the command line args; main is its only production caller,
// tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runWithInput(ctx, args, getenv, os.Stdin, stdout, stderr)
}

// runWithInput is run with standard input given: tests pass what a person
// or a pipe would type.
func runWithInput(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "latch",
		Short:         "A small, fast, self-hosted OAuth 2.0 and OpenID Connect server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&c.configPath, "config", "", "configuration file (default: ./config.yaml when it exists)")
	root.AddCommand(c.serveCommand(), c.migrateCommand(), c.versionCommand(), c.janitorCommand(), c.backupCommand(),
		c.clientsCommand(), c.usersCommand(), c.tokensCommand(), c.keysCommand(), c.secretsCommand(), c.sessionsCommand(), c.connectorsCmd())
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// loadConfig reads the file (an explicit --config must exist; the default
// ./config.yaml may not) and applies LATCH_* variables. Flags come after,
// then the caller validates.
func (c *cli) loadConfig() (config.File, error) {
	var (
		f   config.File
		err error
	)
	if c.configPath != "" {
		f, err = config.Load(c.configPath)
	} else {
		f, err = config.LoadDefault("config.yaml")
	}
	if err != nil {
		return f, err
	}
	// The names come from the process environment itself: getenv can only
	// look up names already known.
	for _, w := range config.UnknownEnv(os.Environ()) {
		fmt.Fprintln(c.stderr, "latch: warning:", w)
	}
	if err := f.ApplyEnv(c.getenv); err != nil {
		return f, err
	}
	return f, nil
}

func validate(f config.File) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return nil
}

// openStore opens and migrates the database of f, as serve does.
func openStore(ctx context.Context, f config.File, log *slog.Logger) (*storage.GormStore, error) {
	return server.OpenStore(ctx, f, log)
}

// openConfigured loads and validates the configuration and opens its
// database, as serve does, for the management commands. They may run while
// serve runs on the same database: SQLite's WAL and busy timeout let both
// write.
func (c *cli) openConfigured(ctx context.Context) (config.File, *storage.GormStore, error) {
	f, err := c.loadConfig()
	if err != nil {
		return f, nil, err
	}
	if err := validate(f); err != nil {
		return f, nil, err
	}
	c.announceDatabase(f)
	st, err := openStore(ctx, f, newLogger(f, c.stderr))
	return f, st, err
}

// withStore runs fn on the configured database and closes it after.
func (c *cli) withStore(ctx context.Context, fn func(f config.File, st storage.Store) error) error {
	f, st, err := c.openConfigured(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(f, st)
}

// readSecret reads a password or secret: from a terminal without echo,
// asking twice when confirm is set; otherwise the first line of standard
// input, so scripts can pipe it. Never from a flag, which would leave it in
// the shell history and the process list.
func (c *cli) readSecret(prompt string, confirm bool) (string, error) {
	var secret string
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(p string) (string, error) {
			fmt.Fprint(c.stderr, p+": ")
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(c.stderr)
			return string(b), err
		}
		var err error
		if secret, err = read(prompt); err != nil {
			return "", err
		}
		if confirm && secret != "" {
			again, err := read("Repeat " + strings.ToLower(prompt[:1]) + prompt[1:])
			if err != nil {
				return "", err
			}
			if again != secret {
				return "", errors.New("the two entries do not match; nothing was changed")
			}
		}
	} else {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read %s from standard input: %w", strings.ToLower(prompt), err)
		}
		secret = strings.TrimRight(line, "\r\n")
	}
	if secret == "" {
		return "", fmt.Errorf("%s must not be empty", strings.ToLower(prompt))
	}
	return secret, nil
}

// outputFlag adds --output to cmd; check validates it before any work.
type outputFlag string

func (o *outputFlag) add(cmd *cobra.Command) {
	*o = "table"
	cmd.Flags().StringVarP((*string)(o), "output", "o", "table", "output format: table or json")
}

func (o outputFlag) check() error {
	if o != "table" && o != "json" {
		return fmt.Errorf("--output must be table or json, not %q", string(o))
	}
	return nil
}

func (o outputFlag) json() bool { return o == "json" }

// writeJSON prints v indented, as the json output of every command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLogger(f config.File, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(f.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if f.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (c *cli) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, err := c.openConfigured(cmd.Context()) // migrates
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := st.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "database schema at version %d\n", v)
			return nil
		},
	}
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(c.stdout, "latch %s\n", version)
		},
	}
}
