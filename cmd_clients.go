package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

func (c *cli) clientsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Create, list, change and delete OAuth clients",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(c.clientsCreate(), c.clientsList(), c.clientsGet(), c.clientsUpdate(), c.clientsDelete(), c.clientsRotateSecret())
	return cmd
}

// withClients runs fn with the client manager of the configured database.
func (c *cli) withClients(ctx context.Context, fn func(f config.File, m *clients.Manager) error) error {
	return c.withStore(ctx, func(f config.File, st storage.Store) error {
		return fn(f, &clients.Manager{Store: st, Hasher: clients.NewHasher(1), Rules: clients.Rules{InsecureHTTP: f.InsecureHTTP}})
	})
}

// clientError says in a person's words what went wrong with client id.
func clientError(id string, err error) error {
	var invalid clients.ValidationError
	switch {
	case errors.As(err, &invalid):
		return fmt.Errorf("invalid client %q:\n  %s", id, strings.ReplaceAll(invalid.Error(), "\n", "\n  "))
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("client %q not found", id)
	case errors.Is(err, storage.ErrAlreadyExists):
		return fmt.Errorf("client %q already exists", id)
	}
	return err
}

// warnDeclared warns that serve will undo a change to a client of the
// config file: it upserts them at every start.
func (c *cli) warnDeclared(f config.File, id string) {
	for _, fc := range f.Clients {
		if fc.ID == id {
			fmt.Fprintf(c.stderr, "warning: client %q is declared in the config file; `latch serve` restores the file's settings at its next start\n", id)
			return
		}
	}
}

// clientID is the Args of the commands that name one client.
func clientID(cmd *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return fmt.Errorf("give one client id: latch clients %s ID", cmd.Name())
	}
	return nil
}

func (c *cli) clientsCreate() *cobra.Command {
	var (
		o           clientFlags
		out         outputFlag
		secretStdin bool
	)
	cmd := &cobra.Command{
		Use:   "create --id ID [flags]",
		Short: "Create a client; a generated secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if o.id == "" {
				return errors.New("--id is required: the client_id, e.g. --id my-app")
			}
			cl := &clients.Client{ID: o.id, TokenEndpointAuthMethod: clients.AuthMethodBasic,
				GrantTypes: []string{clients.GrantClientCredentials}}
			if err := o.apply(cmd, cl); err != nil {
				return err
			}
			if len(cl.GrantTypes) == 0 {
				cl.GrantTypes = []string{clients.GrantClientCredentials}
			}
			var chosen string
			if secretStdin {
				var err error
				if chosen, err = c.readSecret("Client secret", true); err != nil {
					return err
				}
			}
			return c.withClients(cmd.Context(), func(f config.File, m *clients.Manager) error {
				c.warnDeclared(f, cl.ID)
				secret, err := m.Create(cmd.Context(), cl, chosen)
				if err != nil {
					return clientError(cl.ID, err)
				}
				if secretStdin {
					secret = "" // the person knows it; do not echo it
				}
				return c.printSaved(out, "created", cl, secret)
			})
		},
	}
	cmd.Flags().StringVar(&o.id, "id", "", "client_id (required)")
	o.add(cmd)
	cmd.Flags().BoolVar(&secretStdin, "secret-stdin", false, "read a chosen secret from standard input instead of generating one")
	out.add(cmd)
	return cmd
}

func (c *cli) clientsList() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every client",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			return c.withClients(cmd.Context(), func(_ config.File, m *clients.Manager) error {
				list, err := m.List(cmd.Context())
				if err != nil {
					return err
				}
				if out.json() {
					for _, cl := range list {
						clients.Defaults(cl) // [] for lists of rows stored with null
					}
					return writeJSON(c.stdout, append([]*clients.Client{}, list...))
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "CLIENT ID\tNAME\tAUTH METHOD\tGRANT TYPES\tSCOPES\tREDIRECT URIS")
				for _, cl := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, orDash(cl.Name), cl.GetTokenEndpointAuthMethod(),
						joined(cl.GrantTypes), joined(cl.Scopes), joined(cl.RedirectURIs))
				}
				return tw.Flush()
			})
		},
	}
	out.add(cmd)
	return cmd
}

func (c *cli) clientsGet() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one client (never its secret)",
		Args:  clientID,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			return c.withClients(cmd.Context(), func(_ config.File, m *clients.Manager) error {
				cl, err := m.Get(cmd.Context(), args[0])
				if err != nil {
					return clientError(args[0], err)
				}
				if out.json() {
					clients.Defaults(cl) // [] for lists of rows stored with null
					return writeJSON(c.stdout, cl)
				}
				return printClient(c.stdout, cl)
			})
		},
	}
	out.add(cmd)
	return cmd
}

func (c *cli) clientsUpdate() *cobra.Command {
	var (
		o   clientFlags
		out outputFlag
	)
	cmd := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change the given fields of a client; the others stay as they are",
		Long: "Change the given fields of a client; the others stay as they are.\n" +
			"A list flag replaces the whole list; give it once with an empty value to clear it (--audience \"\").\n" +
			"Changing --grant-type sets the response types to match unless --response-type is given.",
		Args: clientID,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			return c.withClients(cmd.Context(), func(f config.File, m *clients.Manager) error {
				cl, err := m.Get(cmd.Context(), args[0])
				if err != nil {
					return clientError(args[0], err)
				}
				c.warnDeclared(f, cl.ID)
				if err := o.apply(cmd, cl); err != nil {
					return err
				}
				// A public client made confidential, or a client moved to
				// client_secret_jwt (whose secret is kept in clear, sealed),
				// needs a new secret: give it one, shown once as on create.
				var secret string
				if cl.IsPublic() {
					cl.SecretHash, cl.JWTSecret = "", ""
				}
				if clients.NeedsNewSecret(cl) {
					if secret, err = clients.NewSecret(cl); err != nil {
						return err
					}
				}
				if err := m.Update(cmd.Context(), cl); err != nil {
					return clientError(cl.ID, err)
				}
				return c.printSaved(out, "updated", cl, secret)
			})
		},
	}
	o.add(cmd)
	out.add(cmd)
	return cmd
}

func (c *cli) clientsDelete() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a client and every token issued to it",
		Args:  clientID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClients(cmd.Context(), func(f config.File, m *clients.Manager) error {
				c.warnDeclared(f, args[0])
				if err := m.Delete(cmd.Context(), args[0]); err != nil {
					return clientError(args[0], err)
				}
				fmt.Fprintf(c.stdout, "deleted client %s and revoked every token issued to it\n", args[0])
				return nil
			})
		},
	}
}

func (c *cli) clientsRotateSecret() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "rotate-secret ID",
		Short: "Give a client a new generated secret, printed once; the old one stops working",
		Args:  clientID,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			id := args[0]
			return c.withClients(cmd.Context(), func(f config.File, m *clients.Manager) error {
				cl, err := m.Get(cmd.Context(), id)
				if err != nil {
					return clientError(id, err)
				}
				if cl.IsPublic() {
					return fmt.Errorf("client %q is public (token_endpoint_auth_method none) and has no secret", id)
				}
				c.warnDeclared(f, id)
				secret, err := m.RotateSecret(cmd.Context(), id)
				if err != nil {
					return clientError(id, err)
				}
				if out.json() {
					fmt.Fprintln(c.stderr, secretNotice)
					return writeJSON(c.stdout, map[string]string{"client_id": id, "client_secret": secret})
				}
				fmt.Fprintf(c.stdout, "new secret of client %s: %s\n%s The old secret no longer works.\n", id, secret, secretNotice)
				return nil
			})
		},
	}
	out.add(cmd)
	return cmd
}

// printSaved reports a created or updated client, with its new secret, if
// any, shown this once.
func (c *cli) printSaved(out outputFlag, verb string, cl *clients.Client, secret string) error {
	if out.json() {
		if secret != "" {
			fmt.Fprintln(c.stderr, secretNotice)
		}
		return writeJSON(c.stdout, struct {
			*clients.Client
			Secret string `json:"client_secret,omitempty"`
		}{cl, secret})
	}
	fmt.Fprintf(c.stdout, "%s client %s\n", verb, cl.ID)
	if err := printClient(c.stdout, cl); err != nil {
		return err
	}
	if secret != "" {
		fmt.Fprintf(c.stdout, "\nclient_secret: %s\n%s\n", secret, secretNotice)
	}
	return nil
}

// printClient writes every field of cl but its secret, one per line.
func printClient(w io.Writer, cl *clients.Client) error {
	format := cl.AccessTokenFormat
	if format == "" {
		format = "(server default)"
	}
	rate := strconv.FormatFloat(cl.RateLimit, 'g', -1, 64) + " per second"
	if cl.RateLimit == 0 {
		rate = "unlimited"
	}
	jwks := "-"
	if cl.JWKS != nil {
		jwks = fmt.Sprintf("%d public keys", len(cl.JWKS.Keys))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range [][2]string{
		{"client_id", cl.ID},
		{"client_name", orDash(cl.Name)},
		{"token_endpoint_auth_method", cl.GetTokenEndpointAuthMethod()},
		{"grant_types", joined(cl.GrantTypes)},
		{"response_types", joined(cl.ResponseTypes)},
		{"redirect_uris", joined(cl.RedirectURIs)},
		{"post_logout_redirect_uris", joined(cl.PostLogoutRedirectURIs)},
		{"scopes", joined(cl.Scopes)},
		{"audience", joined(cl.Audience)},
		{"jwks", jwks},
		{"access_token_format", format},
		{"rate_limit", rate},
		{"skip_consent", strconv.FormatBool(cl.SkipConsent)},
		{"require_signed_request", strconv.FormatBool(cl.RequireSignedRequestObject)},
		{"dpop_bound_access_tokens", strconv.FormatBool(cl.DPoPBoundAccessTokens)},
		{"backchannel_logout_uri", orDash(cl.BackchannelLogoutURI)},
		{"backchannel_needs_sid", strconv.FormatBool(cl.BackchannelLogoutSessionRequired)},
		{"token_exchange", tokenExchangeSummary(cl.TokenExchange)},
		{"created_at", stamp(cl.CreatedAt)},
		{"updated_at", stamp(cl.UpdatedAt)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

// tokenExchangeSummary is the token exchange policy on one line.
func tokenExchangeSummary(te *clients.TokenExchangePolicy) string {
	if te == nil {
		return "-"
	}
	return fmt.Sprintf("audiences=%s impersonation=%t refresh_tokens=%t", joined(te.Audiences), te.Impersonation, te.RefreshTokens)
}

func joined(list []string) string { return orDash(strings.Join(list, " ")) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
