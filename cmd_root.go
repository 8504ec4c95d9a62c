package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// cli is what every command shares: the process's environment and output.
type cli struct {
	getenv     func(string) string
	stdout     io.Writer
	stderr     io.Writer
	configPath string
}

// run executes the command line args; main is its only production caller,
// tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "latch",
		Short:         "A small, fast, self-hosted OAuth 2.0 and OpenID Connect server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&c.configPath, "config", "", "configuration file (default: ./config.yaml when it exists)")
	root.AddCommand(c.serveCommand(), c.migrateCommand(), c.versionCommand())
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

// openStore opens and migrates the database of f.
func openStore(ctx context.Context, f config.File, log *slog.Logger) (*storage.GormStore, error) {
	st, err := storage.Open(ctx, storage.Options{
		Driver:                  f.Database.Driver,
		DSN:                     f.Database.DSN,
		Logger:                  log,
		RefreshTokenGracePeriod: f.Tokens.RefreshTokenGracePeriod.Duration,
	})
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, err
	}
	return st, nil
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
			f, err := c.loadConfig()
			if err != nil {
				return err
			}
			if err := validate(f); err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), f, newLogger(f, c.stderr))
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
