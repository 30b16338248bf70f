package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

func registerCommand() *cli.Command {
	return &cli.Command{
		Name:  "register",
		Usage: "create a runner in GitLab and print (or save) its token",
		Description: `register creates a runner and prints its authentication token (glrt-...),
or writes it to --token-file. Two ways, as GitLab offers:
  --access-token: a personal access token with the create_runner scope
    (POST /api/v4/user/runners, GitLab 16 and later), with --runner-type
    instance_type, group_type (--group-id) or project_type (--project-id);
  --registration-token: a legacy registration token (POST /api/v4/runners).

Examples:
   wasmrunner register --url https://gitlab.example.com --access-token glpat-... --runner-type project_type --project-id 42 --tags wasm --token-file ./token
   wasmrunner register --url https://gitlab.example.com --registration-token GR1348941... --description lab-runner`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "GitLab URL (required)", EnvVars: []string{"WASMRUNNER_URL"}},
			&cli.StringFlag{Name: "access-token", Usage: "personal access token (create_runner scope)", EnvVars: []string{"WASMRUNNER_ACCESS_TOKEN"}},
			&cli.StringFlag{Name: "registration-token", Usage: "legacy registration token", EnvVars: []string{"WASMRUNNER_REGISTRATION_TOKEN"}},
			&cli.StringFlag{Name: "runner-type", Value: gitlab.InstanceRunner, Usage: "instance_type, group_type or project_type (access-token flow)"},
			&cli.Int64Flag{Name: "group-id", Usage: "group of a group_type runner"},
			&cli.Int64Flag{Name: "project-id", Usage: "project of a project_type runner"},
			&cli.StringFlag{Name: "description", Value: "wasmrunner", Usage: "runner description"},
			&cli.StringFlag{Name: "tags", Usage: "comma-separated tags"},
			&cli.BoolFlag{Name: "run-untagged", Usage: "also take jobs without tags"},
			&cli.StringFlag{Name: "token-file", Usage: "write the new token to this file (mode 0600) instead of printing it"},
			&cli.StringFlag{Name: "config", Usage: "append the new runner to this serve --config file (mode 0600) instead of printing the token"},
			&cli.StringFlag{Name: "name", Usage: "the runner's name in --config (default: --description)"},
			&cli.StringFlag{Name: "modules", Usage: "the runner's modules dir in --config"},
		}, tlsFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if c.String("url") == "" {
				return usageError("--url (or WASMRUNNER_URL) is required")
			}
			rt, err := commandTransport(c)
			if err != nil {
				return err
			}
			client, err := gitlab.New(c.String("url"), gitlab.WithHTTPClient(&http.Client{Transport: rt}))
			if err != nil {
				return usageError(err.Error())
			}
			var rc gitlab.RunnerCredentials
			switch at, rt := c.String("access-token"), c.String("registration-token"); {
			case at != "" && rt != "":
				return usageError("use --access-token or --registration-token, not both")
			case c.String("config") != "" && c.String("token-file") != "":
				return usageError("use --config or --token-file, not both")
			case c.String("config") != "" && c.String("modules") == "":
				return usageError("--config needs --modules for the new runner")
			case at != "":
				rc, err = client.CreateRunner(c.Context, at, gitlab.CreateRunnerRequest{
					RunnerType: c.String("runner-type"), GroupID: c.Int64("group-id"), ProjectID: c.Int64("project-id"),
					Description: c.String("description"), TagList: c.String("tags"), RunUntagged: c.Bool("run-untagged"),
				})
			case rt != "":
				rc, err = client.RegisterRunner(c.Context, gitlab.RegisterRunnerRequest{
					Token: rt, Description: c.String("description"), TagList: c.String("tags"), RunUntagged: c.Bool("run-untagged"),
					Info: gitlab.RunnerMeta{Name: "wasmrunner", Version: version, Executor: "wasm", Features: gitlab.DefaultFeatures()},
				})
			default:
				return usageError("--access-token or --registration-token is required")
			}
			if err != nil {
				return cli.Exit(fmt.Sprintf("registering the runner: %v", err), exitFailure)
			}
			if f := c.String("config"); f != "" {
				name := c.String("name")
				if name == "" {
					name = c.String("description")
				}
				if err := appendRunner(f, runnerConfig{Name: name, URL: c.String("url"), Token: rc.Token, Modules: c.String("modules")}); err != nil {
					return cli.Exit(fmt.Sprintf("runner %d created but not saved: %v; token:\n%s", rc.ID, err, rc.Token), exitFailure)
				}
				fmt.Fprintf(c.App.Writer, "runner %d created; added to %s as %q\n", rc.ID, f, name)
				return nil
			}
			if f := c.String("token-file"); f != "" {
				if err := os.WriteFile(f, []byte(rc.Token+"\n"), 0o600); err != nil {
					return cli.Exit(err.Error(), exitFailure)
				}
				fmt.Fprintf(c.App.Writer, "runner %d created; token written to %s\n", rc.ID, f)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "runner %d created; token:\n%s\n", rc.ID, rc.Token)
			return nil
		},
	}
}

// appendRunner adds a [[runners]] entry to a config file, creating it (mode
// 0600: it holds a token) if needed. The file must still load afterwards.
func appendRunner(path string, r runnerConfig) error {
	entry := fmt.Sprintf("\n[[runners]]\nname = %q\nurl = %q\ntoken = %q\nmodules = %q\n", r.Name, r.URL, r.Token, r.Modules)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(entry); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = loadConfig(path)
	return err
}

// tokenFrom returns a token given directly or in a file.
func tokenFrom(token, file string) (string, error) {
	token = strings.TrimSpace(token)
	if file != "" {
		if token != "" {
			return "", usageError("use --token or --token-file, not both")
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return "", usageError(fmt.Sprintf("reading --token-file: %v", err))
		}
		token = strings.TrimSpace(string(data))
	}
	if token == "" {
		return "", usageError("--token, --token-file or WASMRUNNER_TOKEN is required")
	}
	return token, nil
}
