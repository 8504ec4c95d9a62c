package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

func (c *cli) usersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Add, list and delete the built-in users, and set their passwords",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(c.usersAdd(), c.usersList(), c.usersDelete(), c.usersSetPassword(), c.usersMFA())
	return cmd
}

// userView is a user as the CLI prints it: everything but the password hash.
type userView struct {
	Username      string         `json:"username"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"email_verified"`
	Name          string         `json:"name,omitempty"`
	Groups        []string       `json:"groups"`
	Claims        map[string]any `json:"claims,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	SecondFactors []string       `json:"second_factors"`
}

func viewOf(u *storage.User, factors []string) userView {
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	v := userView{Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Groups: groups, Claims: u.Claims, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, SecondFactors: factors}
	if v.SecondFactors == nil {
		v.SecondFactors = []string{}
	}
	return v
}

func userError(username string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("user %q not found", username)
	}
	return err
}

func (c *cli) warnDeclaredUser(f config.File, username string) {
	for _, u := range f.Users {
		if u.Username == username {
			fmt.Fprintf(c.stderr, "warning: user %q is declared in the config file; `latch serve` restores the file's settings at its next start\n", username)
			return
		}
	}
}

func username(cmd *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return fmt.Errorf("give one username: latch users %s USERNAME", cmd.Name())
	}
	return nil
}

// newPassword reads a password (never from a flag) and hashes it.
func (c *cli) newPassword(username string) (string, error) {
	password, err := c.readSecret("Password for "+username, true)
	if err != nil {
		return "", err
	}
	if err := passhash.CheckPassword(password); err != nil {
		return "", fmt.Errorf("password of user %s: %w", username, err)
	}
	return passhash.Hash(password)
}

func (c *cli) usersAdd() *cobra.Command {
	var u storage.User
	cmd := &cobra.Command{
		Use:   "add --username NAME [flags]",
		Short: "Add a user; the password is read from the terminal (no echo) or one line of standard input",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(u.Username) == "" {
				return errors.New("--username is required")
			}
			return c.withStore(cmd.Context(), func(f config.File, st storage.Store) error {
				switch _, err := st.GetUser(cmd.Context(), u.Username); {
				case err == nil:
					return fmt.Errorf("user %q already exists (latch users set-password %s changes the password)", u.Username, u.Username)
				case !errors.Is(err, storage.ErrNotFound):
					return err
				}
				if err := users.CheckNotClientID(cmd.Context(), st, u.Username); err != nil {
					return err
				}
				c.warnDeclaredUser(f, u.Username)
				hash, err := c.newPassword(u.Username)
				if err != nil {
					return err
				}
				u.PasswordHash = hash
				if err := st.UpsertUser(cmd.Context(), &u); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "added user %s\n", u.Username)
				return nil
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&u.Username, "username", "", "username to sign in with (required)")
	fs.StringVar(&u.Email, "email", "", "email address (the email claim)")
	fs.BoolVar(&u.EmailVerified, "email-verified", false, "the email address is verified")
	fs.StringVar(&u.Name, "name", "", "full name (the name claim)")
	fs.StringArrayVar(&u.Groups, "group", nil, "group (repeatable; the groups claim)")
	return cmd
}

func (c *cli) usersList() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				list, err := st.ListUsers(cmd.Context())
				if err != nil {
					return err
				}
				names := make([]string, len(list))
				for i, u := range list {
					names[i] = u.Username
				}
				factors, err := st.SecondFactors(cmd.Context(), names)
				if err != nil {
					return err
				}
				views := make([]userView, len(list))
				for i, u := range list {
					views[i] = viewOf(u, factors[u.Username])
				}
				if out.json() {
					return writeJSON(c.stdout, views)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "USERNAME\tNAME\tEMAIL\tVERIFIED\tGROUPS\tMFA\tCREATED")
				for _, u := range views {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, orDash(u.Name), orDash(u.Email),
						strconv.FormatBool(u.EmailVerified), orDash(strings.Join(u.Groups, ",")), orDash(strings.Join(u.SecondFactors, ",")), stamp(u.CreatedAt))
				}
				return tw.Flush()
			})
		},
	}
	out.add(cmd)
	return cmd
}

func (c *cli) usersDelete() *cobra.Command {
	return &cobra.Command{
		Use:   "delete USERNAME",
		Short: "Delete a user with their tokens, sessions and consents",
		Args:  username,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd.Context(), func(f config.File, st storage.Store) error {
				c.warnDeclaredUser(f, args[0])
				if err := st.DeleteUser(cmd.Context(), args[0]); err != nil {
					return userError(args[0], err)
				}
				fmt.Fprintf(c.stdout, "deleted user %s and revoked their tokens, sessions and consents\n", args[0])
				return nil
			})
		},
	}
}

func (c *cli) usersSetPassword() *cobra.Command {
	return &cobra.Command{
		Use:   "set-password USERNAME",
		Short: "Set a user's password, read from the terminal (no echo) or one line of standard input",
		Args:  username,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd.Context(), func(f config.File, st storage.Store) error {
				u, err := st.GetUser(cmd.Context(), args[0])
				if err != nil {
					return userError(args[0], err)
				}
				c.warnDeclaredUser(f, u.Username)
				if u.PasswordHash, err = c.newPassword(u.Username); err != nil {
					return err
				}
				if err := st.UpsertUser(cmd.Context(), u); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "changed the password of user %s\n", u.Username)
				return nil
			})
		},
	}
}
