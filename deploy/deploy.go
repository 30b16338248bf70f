// Package deploy runs wasmrunner as a fleet. It holds the Helm chart
// (helm/wasmrunner), the plain manifests rendered from it
// (manifests/wasmrunner.yaml, by cmd/render) and Render, which renders the
// chart as helm template does, with helm's own library. The container image
// is built by the image package beside it (cmd/image).
//
// deploy is a Go module of its own so that helm's and Kubernetes'
// dependencies stay out of the runner's module.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"sigs.k8s.io/yaml"
)

// Release names a rendering: the release's name and namespace.
type Release struct {
	Name, Namespace string
}

// Manifest is one rendered template.
type Manifest struct {
	// Template is the template's path in the chart
	// (wasmrunner/templates/deployment.yaml).
	Template string
	// Body is what it rendered, without blank lines at either end.
	Body string
}

// Render renders the chart in dir for a new release, with values over the
// chart's values.yaml, after checking them against its
// values.schema.json, as `helm template` does. It returns every template
// that rendered to something but NOTES.txt, in template order.
func Render(dir string, rel Release, values map[string]any) ([]Manifest, error) {
	chrt, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading the chart: %w", err)
	}
	vals, err := util.ToRenderValuesWithSchemaValidation(chrt, values,
		common.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true}, nil, false)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	out, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, fmt.Errorf("rendering: %w", err)
	}
	var ms []Manifest
	for name, body := range out {
		body = strings.TrimSpace(body)
		if body == "" || path.Base(name) == "NOTES.txt" || strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		ms = append(ms, Manifest{Template: name, Body: body})
	}
	slices.SortFunc(ms, func(a, b Manifest) int { return strings.Compare(a.Template, b.Template) })
	return ms, nil
}

// ReadValues reads a values file.
func ReadValues(file string) (map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}

// YAML joins manifests into one stream, each after a "# Source:" comment as
// helm template writes it.
func YAML(ms []Manifest) []byte {
	var b bytes.Buffer
	for _, m := range ms {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Template, m.Body)
	}
	return b.Bytes()
}

// Documents splits a manifest's body into its YAML documents, without
// empty ones.
func Documents(body string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+body+"\n", "\n---\n") {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// ChartDir is the chart's directory, relative to the deploy module.
var ChartDir = filepath.Join("helm", "wasmrunner")

// The plain manifests and the values they are rendered with, relative to
// the deploy module.
var (
	PlainManifests = filepath.Join("manifests", "wasmrunner.yaml")
	PlainValues    = filepath.Join("manifests", "values.yaml")
)

// PlainRelease is the release the plain manifests are rendered as.
var PlainRelease = Release{Name: "wasmrunner", Namespace: "wasmrunner"}

// RenderPlain renders the plain manifests of the deploy module in dir.
func RenderPlain(dir string) ([]byte, error) {
	vals, err := ReadValues(filepath.Join(dir, PlainValues))
	if err != nil {
		return nil, err
	}
	ms, err := Render(filepath.Join(dir, ChartDir), PlainRelease, vals)
	if err != nil {
		return nil, err
	}
	header := "# wasmrunner's chart (deploy/helm/wasmrunner) rendered with " + filepath.ToSlash(PlainValues) +
		"\n# as release \"wasmrunner\" in namespace \"wasmrunner\": `cd deploy && go run ./cmd/render` writes it.\n" +
		"# Before applying: create the namespace and the Secret wasmrunner-tokens (a key per runner name\n" +
		"# holding its glrt- token), set the image, and the GitLab URL in the ConfigMap (docs/deploy.md).\n"
	return append([]byte(header), YAML(ms)...), nil
}
