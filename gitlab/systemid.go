package gitlab

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultMachineIDFile is where the machine id is read from.
const DefaultMachineIDFile = "/etc/machine-id"

// SystemID returns the runner's system_id, which tells GitLab apart the
// machines that share one runner token. Like the official runner it is
// "s_" and 12 hex characters of HMAC-SHA256("gitlab-runner") keyed with
// the machine id read from machineIDFile; without a machine id it is "r_"
// and 12 random alphanumerics, created once and kept in stateFile (a
// stateFile already holding a valid id wins in both cases, so the id does
// not change under a runner).
func SystemID(machineIDFile, stateFile string) (string, error) {
	if stateFile != "" {
		data, err := os.ReadFile(stateFile)
		switch {
		case err == nil:
			if id := strings.TrimSpace(string(data)); validSystemID(id) {
				return id, nil
			}
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("gitlab: reading system id: %w", err)
		}
	}
	if machineIDFile != "" {
		if data, err := os.ReadFile(machineIDFile); err == nil {
			if mid := strings.TrimSpace(string(data)); mid != "" {
				return machineSystemID(mid), nil
			}
		}
	}
	id := randomSystemID()
	if stateFile != "" {
		if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
			return "", fmt.Errorf("gitlab: saving system id: %w", err)
		}
		if err := os.WriteFile(stateFile, []byte(id+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("gitlab: saving system id: %w", err)
		}
	}
	return id, nil
}

func machineSystemID(machineID string) string {
	mac := hmac.New(sha256.New, []byte(machineID))
	mac.Write([]byte("gitlab-runner"))
	return "s_" + hex.EncodeToString(mac.Sum(nil))[:12]
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomSystemID() string {
	// rand.Text is uniformly random base32 (A-Z, 2-7): alphanumeric.
	return "r_" + rand.Text()[:12]
}

func validSystemID(id string) bool {
	if len(id) != 14 || (id[:2] != "s_" && id[:2] != "r_") {
		return false
	}
	for _, c := range id[2:] {
		if !strings.ContainsRune(alnum, c) {
			return false
		}
	}
	return true
}
