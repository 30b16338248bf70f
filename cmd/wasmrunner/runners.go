package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine/fleet"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/tomlfile"
)

// Runner entries of a config file: a token serve replaced is saved there;
// list shows the entries; unregister deletes runners from GitLab and
// their entries from the file. The file is edited in place (comments and
// order stay).

// saveRotatedToken saves a runner's new token: in its token_file when its
// entry has one, else as its token; its times go to the entry
// (token_obtained_at, token_expires_at).
func saveRotatedToken(path, runner string, t fleet.Token) error {
	fc, err := loadConfig(path)
	if err != nil && len(fc.Runners) == 0 {
		return err
	}
	i := slices.IndexFunc(fc.Runners, func(r runnerConfig) bool { return r.Name == runner })
	if i < 0 {
		return fmt.Errorf("%s: no runner %q to save its new token in", path, runner)
	}
	set := []tomlfile.KeyValue{{Key: "token_obtained_at", Value: t.ObtainedAt}}
	if !t.ExpiresAt.IsZero() {
		set = append(set, tomlfile.KeyValue{Key: "token_expires_at", Value: t.ExpiresAt})
	}
	if f := fc.Runners[i].TokenFile; f != "" {
		if err := tomlfile.WriteFileAtomic(f, []byte(t.Token+"\n")); err != nil {
			return err
		}
	} else {
		set = append(set, tomlfile.KeyValue{Key: "token", Value: t.Token})
	}
	return editConfig(path, func(data []byte) ([]byte, error) { return tomlfile.SetInArrayTable(data, "runners", i, set) })
}

// editConfig rewrites the config file at path with edit (atomically,
// keeping its mode); the result must load.
func editConfig(path string, edit func([]byte) ([]byte, error)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := edit(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var check fileConfig
	if err := tomlfile.DecodeBytes(path, out, &check); err != nil {
		return fmt.Errorf("%s: the edited file would not load (left unchanged): %w", path, err)
	}
	return tomlfile.WriteFileAtomic(path, out)
}

// tokenFileSaver saves a rotated token of the runner of the command line:
// in --token-file, or nowhere when the token was given as such.
func tokenFileSaver(file string) func(string, fleet.Token) error {
	return func(_ string, t fleet.Token) error {
		if file == "" {
			return errors.New("the token was given by --token or WASMRUNNER_TOKEN, so the new one cannot be saved: give it in --token-file (or a config file) to have it rotated across restarts")
		}
		return tomlfile.WriteFileAtomic(file, []byte(t.Token+"\n"))
	}
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the runners of a config file",
		Description: `list prints the [[runners]] entries of --config: name, GitLab URL, the
token's first characters (as GitLab shows them), its expiry, and the
modules. With --verify each token is checked with GitLab (as verify does):
the last column says whether GitLab takes it. Tokens are never printed
whole.

Example:
   wasmrunner list --config /etc/wasmrunner/config.toml --verify`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "the config file (required)", EnvVars: []string{"WASMRUNNER_CONFIG"}},
			&cli.BoolFlag{Name: "verify", Usage: "check each token with GitLab"},
		}, tlsFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			path := c.String("config")
			if path == "" {
				return usageError("--config (or WASMRUNNER_CONFIG) is required")
			}
			fc, err := loadConfig(path)
			if err != nil && len(fc.Runners) == 0 {
				return usageError(err.Error())
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			head := "NAME\tURL\tTOKEN\tEXPIRES\tMODULES"
			if c.Bool("verify") {
				head += "\tGITLAB"
			}
			fmt.Fprintln(w, head)
			failed := 0
			for _, r := range fc.Runners {
				expires := "never"
				if !r.TokenExpiresAt.IsZero() {
					expires = r.TokenExpiresAt.UTC().Format(time.RFC3339)
				} else if r.Token != "" {
					expires = "unknown"
				}
				line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Name, redactURL(r.URL), shortToken(r.Token), expires, r.Modules)
				if c.Bool("verify") {
					status := "ok"
					if err := verifyEntry(c, r); err != nil {
						status, failed = err.Error(), failed+1
					}
					line += "\t" + status
				}
				fmt.Fprintln(w, line)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if failed > 0 {
				return cli.Exit(fmt.Sprintf("%d of %d runners' tokens not taken by GitLab", failed, len(fc.Runners)), exitFailure)
			}
			return nil
		},
	}
}

// shortToken is the start of a token, as GitLab shows runners' tokens.
func shortToken(t string) string {
	if t == "" {
		return "(none)"
	}
	n := 8
	if strings.HasPrefix(t, "glrt-") {
		n = 5 + 8
	}
	if len(t) <= n {
		return strings.Repeat("*", len(t))
	}
	return t[:n] + "..."
}

// entryClient returns a GitLab client for a config entry: its TLS files
// over the flags'.
func entryClient(c *cli.Context, r runnerConfig) (*gitlab.Client, error) {
	o, err := tlsFlagOptions(c)
	if err != nil {
		return nil, err
	}
	if r.TLSCAFile != "" {
		o.CAFile = r.TLSCAFile
	}
	if r.TLSCertFile != "" {
		o.CertFile, o.KeyFile = r.TLSCertFile, r.TLSKeyFile
	}
	rt, err := gitlab.NewTransport(gitlab.TransportOptions{TLS: o})
	if err != nil {
		return nil, err
	}
	return gitlab.New(r.URL, gitlab.WithHTTPClient(&http.Client{Transport: rt}), gitlab.WithRetryPolicy(verifyRetry))
}

// verifyEntry checks an entry's token with GitLab.
func verifyEntry(c *cli.Context, r runnerConfig) error {
	client, err := entryClient(c, r)
	if err != nil {
		return err
	}
	if _, err := client.VerifyRunner(c.Context, r.Token, ""); err != nil {
		if errors.Is(err, gitlab.ErrForbidden) {
			return errors.New("token not valid")
		}
		return err
	}
	return nil
}

func unregisterCommand() *cli.Command {
	return &cli.Command{
		Name:  "unregister",
		Usage: "delete runners from GitLab (and from a config file)",
		Description: `unregister deletes a runner from GitLab (DELETE /api/v4/runners with its
token): the runner of --url and --token (or --token-file), or, with
--config, the entry --name names (or every entry, --all-runners), which is
then removed from the file (in place: the rest of the file, comments
included, stays). A runner GitLab no longer knows (403: deleted already,
or its token expired) is removed from the file too. A serve reading the
file drops the runner at its next SIGHUP.

Examples:
   wasmrunner unregister --config /etc/wasmrunner/config.toml --name team-a
   wasmrunner unregister --url https://gitlab.example.com --token-file ./token`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "the config file", EnvVars: []string{"WASMRUNNER_CONFIG"}},
			&cli.StringFlag{Name: "name", Usage: "the runner entry of --config to unregister"},
			&cli.BoolFlag{Name: "all-runners", Usage: "unregister every runner of --config"},
			&cli.StringFlag{Name: "url", Usage: "GitLab URL (without --config)", EnvVars: []string{"WASMRUNNER_URL"}},
			&cli.StringFlag{Name: "token", Usage: "the runner's authentication token (without --config)", EnvVars: []string{"WASMRUNNER_TOKEN"}},
			&cli.StringFlag{Name: "token-file", Usage: "read the token from this file (without --config)", EnvVars: []string{"WASMRUNNER_TOKEN_FILE"}},
		}, tlsFlags()...),
		Action: runUnregister,
	}
}

func runUnregister(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	path := c.String("config")
	if path == "" {
		if c.String("name") != "" || c.Bool("all-runners") {
			return usageError("--name and --all-runners name entries of --config")
		}
		if c.String("url") == "" {
			return usageError("--config, or --url and --token, is required")
		}
		token, err := tokenFrom(c.String("token"), c.String("token-file"))
		if err != nil {
			return err
		}
		if err := unregisterEntry(c, runnerConfig{URL: c.String("url"), Token: token}); err != nil {
			return cli.Exit(err.Error(), exitFailure)
		}
		fmt.Fprintln(c.App.Writer, "runner unregistered")
		return nil
	}
	if (c.String("name") == "") == !c.Bool("all-runners") {
		return usageError("with --config, give --name or --all-runners")
	}
	fc, err := loadConfig(path)
	if err != nil && len(fc.Runners) == 0 {
		return usageError(err.Error())
	}
	var names []string
	for _, r := range fc.Runners {
		if c.Bool("all-runners") || r.Name == c.String("name") {
			names = append(names, r.Name)
		}
	}
	if len(names) == 0 {
		return usageError(fmt.Sprintf("%s has no runner %q", path, c.String("name")))
	}
	var errs []error
	for _, name := range names {
		// The entries are read again each time: an index is only good
		// until the previous entry is removed.
		fc, err := loadConfig(path)
		if err != nil && len(fc.Runners) == 0 {
			return err
		}
		i := slices.IndexFunc(fc.Runners, func(r runnerConfig) bool { return r.Name == name })
		if i < 0 {
			continue
		}
		if err := unregisterEntry(c, fc.Runners[i]); err != nil && !errors.Is(err, gitlab.ErrForbidden) {
			errs = append(errs, fmt.Errorf("runner %s: %w (kept in %s)", name, err, path))
			continue
		} else if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "runner %s: GitLab does not know its token (deleted already, or expired); removing it from %s\n", name, path)
		}
		if err := editConfig(path, func(data []byte) ([]byte, error) { return tomlfile.RemoveArrayTable(data, "runners", i) }); err != nil {
			errs = append(errs, fmt.Errorf("runner %s: unregistered, but not removed from the file: %w", name, err))
			continue
		}
		fmt.Fprintf(c.App.Writer, "runner %s unregistered and removed from %s\n", name, path)
	}
	if len(errs) > 0 {
		return cli.Exit(errors.Join(errs...).Error(), exitFailure)
	}
	return nil
}

// unregisterEntry deletes an entry's runner from GitLab.
func unregisterEntry(c *cli.Context, r runnerConfig) error {
	client, err := entryClient(c, r)
	if err != nil {
		return err
	}
	return client.UnregisterRunner(c.Context, r.Token)
}
