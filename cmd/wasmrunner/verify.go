package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that GitLab accepts a runner token",
		Description: `verify asks GitLab (POST /api/v4/runners/verify) whether the token is a
valid runner authentication token. It exits 1 if not.

Example:
   wasmrunner verify --url https://gitlab.example.com --token-file ./token`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "GitLab URL", EnvVars: []string{"WASMRUNNER_URL"}, Required: true},
			&cli.StringFlag{Name: "token", Usage: "runner authentication token", EnvVars: []string{"WASMRUNNER_TOKEN"}},
			&cli.StringFlag{Name: "token-file", Usage: "read the token from this file", EnvVars: []string{"WASMRUNNER_TOKEN_FILE"}},
		},
		Action: func(c *cli.Context) error {
			token, err := tokenFrom(c.String("token"), c.String("token-file"))
			if err != nil {
				return err
			}
			client, err := gitlab.New(c.String("url"))
			if err != nil {
				return usageError(err.Error())
			}
			systemID, _ := gitlab.SystemID(gitlab.DefaultMachineIDFile, filepath.Join(cacheDir(), ".runner_system_id"))
			rc, err := client.VerifyRunner(c.Context, token, systemID)
			if err != nil {
				return cli.Exit(fmt.Sprintf("token not valid: %v", err), exitFailure)
			}
			fmt.Fprintf(c.App.Writer, "token is valid (runner id %d)\n", rc.ID)
			return nil
		},
	}
}
