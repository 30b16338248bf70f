package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/wasmrunner/wasmrunner/deploy"
)

var testRelease = deploy.Release{Name: "ci", Namespace: "runners"}

// objects are a rendering's objects, each decoded strictly into its
// Kubernetes API type.
type objects struct {
	configMaps []*corev1.ConfigMap
	secrets    []*corev1.Secret
	services   []*corev1.Service
	deploys    []*appsv1.Deployment
	pdbs       []*policyv1.PodDisruptionBudget
	hpas       []*autoscalingv2.HorizontalPodAutoscaler
	monitors   []*monitoringv1.ServiceMonitor
}

// decode decodes every document of a rendering strictly (an unknown or
// misspelt field, or a value of the wrong type, is an error) into the
// type its apiVersion and kind name; a kind the test does not know fails.
func decode(t *testing.T, ms []deploy.Manifest) objects {
	t.Helper()
	var o objects
	for _, m := range ms {
		for _, doc := range deploy.Documents(m.Body) {
			var tm struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v\n%s", m.Template, err, doc)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 ConfigMap":
				x := &corev1.ConfigMap{}
				o.configMaps, obj = append(o.configMaps, x), x
			case "v1 Secret":
				x := &corev1.Secret{}
				o.secrets, obj = append(o.secrets, x), x
			case "v1 Service":
				x := &corev1.Service{}
				o.services, obj = append(o.services, x), x
			case "apps/v1 Deployment":
				x := &appsv1.Deployment{}
				o.deploys, obj = append(o.deploys, x), x
			case "policy/v1 PodDisruptionBudget":
				x := &policyv1.PodDisruptionBudget{}
				o.pdbs, obj = append(o.pdbs, x), x
			case "autoscaling/v2 HorizontalPodAutoscaler":
				x := &autoscalingv2.HorizontalPodAutoscaler{}
				o.hpas, obj = append(o.hpas, x), x
			case "monitoring.coreos.com/v1 ServiceMonitor":
				x := &monitoringv1.ServiceMonitor{}
				o.monitors, obj = append(o.monitors, x), x
			default:
				t.Fatalf("%s: a %s %s the test does not know", m.Template, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v\n%s", m.Template, err, doc)
			}
		}
	}
	return o
}

// values builds a values map from YAML.
func values(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func render(t *testing.T, vals string) objects {
	t.Helper()
	ms, err := deploy.Render(deploy.ChartDir, testRelease, values(t, vals))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, ms)
}

// one returns the only element of s.
func one[T any](t *testing.T, what string, s []T) T {
	t.Helper()
	if len(s) != 1 {
		t.Fatalf("%d %s, want 1", len(s), what)
	}
	return s[0]
}

// TestChart renders the chart with several sets of values; every object
// decodes strictly, and the Deployment meets the same bar each time.
func TestChart(t *testing.T) {
	tests := []struct {
		name   string
		values string
		check  func(t *testing.T, o objects, config string)
	}{
		{"defaults", "tokens: {default: glrt-secret}", func(t *testing.T, o objects, config string) {
			s := one(t, "Secrets", o.secrets)
			if s.StringData["default"] != "glrt-secret" {
				t.Errorf("Secret %v", s.StringData)
			}
			d := one(t, "Deployments", o.deploys)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas %v", d.Spec.Replicas)
			}
			for _, want := range []string{`modules = "/usr/share/wasmrunner/modules"`, `token_file = "/etc/wasmrunner/tokens/default"`,
				`url = "https://gitlab.example.com"`, `default_handler = "shell"`, "concurrency = 4\n", "token_rotation = false\n"} {
				if !strings.Contains(config, want) {
					t.Errorf("config lacks %s", want)
				}
			}
			if len(o.hpas) != 0 || len(o.monitors) != 0 {
				t.Error("an HPA or ServiceMonitor by default")
			}
			one(t, "PodDisruptionBudgets", o.pdbs)
			if env := d.Spec.Template.Spec.Containers[0].Env; len(env) != 1 || env[0].Name != "GOMEMLIMIT" ||
				env[0].ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
				t.Errorf("env %+v", env)
			}
		}},
		{"handlers from a registry", `
tokens: {default: glrt-secret}
handlers:
  source: oci
  oci:
    reference: oci://registry.example.com/team/handlers:stable
    pullInterval: 30s
    insecureRegistries: [registry.internal:5000]
    authSecret: registry-creds
`, func(t *testing.T, o objects, config string) {
			for _, want := range []string{`modules = "oci://registry.example.com/team/handlers:stable"`, `pull_interval = "30s"`,
				`insecure_registries = ["registry.internal:5000"]`, `registry_auth_file = "/etc/wasmrunner/registry/config.json"`} {
				if !strings.Contains(config, want) {
					t.Errorf("config lacks %s", want)
				}
			}
			pod := one(t, "Deployments", o.deploys).Spec.Template.Spec
			v := volume(t, pod, "registry-auth")
			if v.Secret == nil || v.Secret.SecretName != "registry-creds" || len(v.Secret.Items) != 1 ||
				v.Secret.Items[0].Key != ".dockerconfigjson" || v.Secret.Items[0].Path != "config.json" {
				t.Errorf("registry-auth volume %+v", v)
			}
			if m := mount(t, pod, "registry-auth"); m.MountPath != "/etc/wasmrunner/registry" || !m.ReadOnly {
				t.Errorf("registry-auth mount %+v", m)
			}
		}},
		{"handlers from a volume", `
tokens: {default: glrt-secret}
handlers:
  source: volume
  volume:
    persistentVolumeClaim: {claimName: handlers, readOnly: true}
`, func(t *testing.T, o objects, config string) {
			if !strings.Contains(config, `modules = "/srv/handlers"`) {
				t.Error("config lacks modules = /srv/handlers")
			}
			pod := one(t, "Deployments", o.deploys).Spec.Template.Spec
			if v := volume(t, pod, "handlers"); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "handlers" {
				t.Errorf("handlers volume %+v", v)
			}
			if m := mount(t, pod, "handlers"); m.MountPath != "/srv/handlers" || !m.ReadOnly {
				t.Errorf("handlers mount %+v", m)
			}
		}},
		{"autoscaling and monitoring", `
tokens: {default: glrt-secret}
autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 30, targetSaturation: 750m}
metrics: {serviceMonitor: {enabled: true, labels: {release: prometheus}}}
podDisruptionBudget: {maxUnavailable: 25%}
`, func(t *testing.T, o objects, _ string) {
			d := one(t, "Deployments", o.deploys)
			if d.Spec.Replicas != nil {
				t.Errorf("replicas %d set beside an HPA", *d.Spec.Replicas)
			}
			h := one(t, "HorizontalPodAutoscalers", o.hpas)
			if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name ||
				*h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 30 {
				t.Errorf("HPA %+v", h.Spec)
			}
			m := one(t, "metrics", h.Spec.Metrics)
			if m.Type != autoscalingv2.PodsMetricSourceType || m.Pods.Metric.Name != "wasmrunner_saturation_ratio" ||
				m.Pods.Target.AverageValue.String() != "750m" {
				t.Errorf("HPA metric %+v", m)
			}
			sm := one(t, "ServiceMonitors", o.monitors)
			svc := one(t, "Services", o.services)
			if sm.Labels["release"] != "prometheus" || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" ||
				sm.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor %+v", sm)
			}
			if sel, err := labelsSelector(&sm.Spec.Selector.MatchLabels); err != nil || !sel.Matches(labels.Set(svc.Labels)) {
				t.Errorf("the ServiceMonitor selects %v, not the Service %v", sm.Spec.Selector.MatchLabels, svc.Labels)
			}
			if pdb := one(t, "PodDisruptionBudgets", o.pdbs); pdb.Spec.MaxUnavailable.String() != "25%" {
				t.Errorf("PDB maxUnavailable %v", pdb.Spec.MaxUnavailable)
			}
		}},
		{"several runners, tokens in an existing Secret", `
existingSecret: runner-tokens
gitlab: {url: https://gitlab.internal}
config:
  concurrency: 16
  extraConfig: |
    compile_cache_size = "512MiB"
    [policy]
    memory = "256MiB"
runners:
  - name: team-a
    tokenKey: a
    handlers: [shell]
    defaultHandler: shell
    concurrency: 8
    outputLimit: 8MiB
  - name: lab
    url: https://lab.gitlab.internal
    checkInterval: 10s
    extraConfig: |
      [runners.policy]
      timeout = "10m"
`, func(t *testing.T, o objects, config string) {
			if len(o.secrets) != 0 {
				t.Error("a Secret beside existingSecret")
			}
			pod := one(t, "Deployments", o.deploys).Spec.Template.Spec
			if v := volume(t, pod, "tokens"); v.Secret == nil || v.Secret.SecretName != "runner-tokens" {
				t.Errorf("tokens volume %+v", v)
			}
			for _, want := range []string{`token_file = "/etc/wasmrunner/tokens/a"`, `token_file = "/etc/wasmrunner/tokens/lab"`,
				`url = "https://lab.gitlab.internal"`, `url = "https://gitlab.internal"`, `handlers = ["shell"]`,
				"concurrency = 8\n", `output_limit = "8MiB"`, `check_interval = "10s"`, "[runners.policy]\ntimeout", "[policy]\nmemory"} {
				if !strings.Contains(config, want) {
					t.Errorf("config lacks %q", want)
				}
			}
		}},
		{"the stop signal field", "tokens: {default: glrt-secret}\ndrain: {stopSignalField: true, timeoutSeconds: 600}", func(t *testing.T, o objects, _ string) {
			pod := one(t, "Deployments", o.deploys).Spec.Template.Spec
			c := pod.Containers[0]
			if c.Lifecycle == nil || c.Lifecycle.StopSignal == nil || *c.Lifecycle.StopSignal != corev1.SIGQUIT {
				t.Errorf("lifecycle %+v", c.Lifecycle)
			}
			if pod.OS == nil || pod.OS.Name != corev1.Linux {
				t.Errorf("os %+v (a stop signal needs one)", pod.OS)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := render(t, tt.values)
			config := one(t, "ConfigMaps", o.configMaps).Data["config.toml"]
			checkDeployment(t, o, config)
			tt.check(t, o, config)
		})
	}
}

func labelsSelector(m *map[string]string) (labels.Selector, error) {
	if len(*m) == 0 {
		return nil, fmt.Errorf("empty selector")
	}
	return labels.SelectorFromSet(*m), nil
}

func volume(t *testing.T, pod corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

func mount(t *testing.T, pod corev1.PodSpec, name string) corev1.VolumeMount {
	t.Helper()
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no mount of %s", name)
	return corev1.VolumeMount{}
}

// checkDeployment checks what every rendering's Deployment must have:
// hardening, probes, draining, writable dirs, and selectors that match.
func checkDeployment(t *testing.T, o objects, config string) {
	t.Helper()
	d := one(t, "Deployments", o.deploys)
	pod := d.Spec.Template.Spec
	c := one(t, "containers", pod.Containers)
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatal("no securityContext")
	}
	if !*psc.RunAsNonRoot || *psc.RunAsUser != 65532 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", psc)
	}
	if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || *sc.Privileged ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %+v", sc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted")
	}

	// The probes reach serve's /healthz and /readyz on the port serve
	// listens on.
	port := one(t, "ports", c.Ports)
	if !strings.Contains(config, fmt.Sprintf("listen = \":%d\"", port.ContainerPort)) {
		t.Errorf("port %d is not where the config listens", port.ContainerPort)
	}
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.String() != port.Name {
			t.Errorf("probe of %s: %+v", path, probe)
		}
	}

	// Draining: serve waits shutdown_timeout for running jobs; the
	// kubelet kills after terminationGracePeriodSeconds, which must be
	// longer.
	var timeout int64
	for _, line := range strings.Split(config, "\n") {
		if _, err := fmt.Sscanf(line, "shutdown_timeout = %d", &timeout); err == nil {
			break
		}
	}
	if timeout == 0 || pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= timeout {
		t.Errorf("terminationGracePeriodSeconds %v, shutdown_timeout %d", pod.TerminationGracePeriodSeconds, timeout)
	}
	if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: a replica should start before one drains", s)
	}
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/wasmrunner/config/config.toml"}) {
		t.Errorf("args %q", c.Args)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}

	// A read-only root: the caches, build dirs and /tmp are emptyDirs.
	for dir, name := range map[string]string{"/var/cache/wasmrunner": "cache", "/tmp": "tmp"} {
		if m := mount(t, pod, name); m.MountPath != dir || m.ReadOnly {
			t.Errorf("mount %s: %+v", name, m)
		}
		if v := volume(t, pod, name); v.EmptyDir == nil {
			t.Errorf("%s is not an emptyDir", name)
		}
	}
	if m := mount(t, pod, "config"); m.MountPath != "/etc/wasmrunner/config" {
		t.Errorf("config mount %+v", m)
	}
	if v := volume(t, pod, "config"); v.ConfigMap == nil || v.ConfigMap.Name != o.configMaps[0].Name {
		t.Errorf("config volume %+v", v)
	}
	if v := volume(t, pod, "tokens"); len(o.secrets) == 1 && v.Secret.SecretName != o.secrets[0].Name {
		t.Errorf("tokens volume %+v, Secret %s", v, o.secrets[0].Name)
	}
	for _, m := range c.VolumeMounts {
		volume(t, pod, m.Name)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config: a config change would not roll the replicas")
	}

	// Selectors select the pods.
	podLabels := labels.Set(d.Spec.Template.Labels)
	if sel, err := labelsSelector(&d.Spec.Selector.MatchLabels); err != nil || !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not match its pods %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	for _, s := range o.services {
		if sel, err := labelsSelector(&s.Spec.Selector); err != nil || !sel.Matches(podLabels) {
			t.Errorf("the Service's selector %v does not match the pods", s.Spec.Selector)
		}
	}
	for _, p := range o.pdbs {
		if sel, err := labelsSelector(&p.Spec.Selector.MatchLabels); err != nil || !sel.Matches(podLabels) {
			t.Errorf("the PDB's selector %v does not match the pods", p.Spec.Selector.MatchLabels)
		}
	}
	for _, obj := range append(append([]string{d.Namespace}, namespaces(o.configMaps)...), namespaces(o.services)...) {
		if obj != testRelease.Namespace {
			t.Errorf("an object in namespace %q", obj)
		}
	}
}

func namespaces[T interface{ GetNamespace() string }](s []T) []string {
	var ns []string
	for _, x := range s {
		ns = append(ns, x.GetNamespace())
	}
	return ns
}

// TestChartRefuses: values the schema or the templates refuse.
func TestChartRefuses(t *testing.T) {
	tests := []struct {
		name, values, want string
	}{
		{"no tokens", "{}", "set tokens"},
		{"a runner without its token", "tokens: {other: glrt-x}", `tokens has no "default"`},
		{"an unknown key", "tokens: {default: x}\nreplicas: 3", "replicas"},
		{"replicas as a word", "tokens: {default: x}\nreplicaCount: two", "replicaCount"},
		{"an unknown handlers source", "tokens: {default: x}\nhandlers: {source: s3}", "source"},
		{"oci without a reference", "tokens: {default: x}\nhandlers: {source: oci}", "reference"},
		{"a reference that is not oci://", "tokens: {default: x}\nhandlers: {source: oci, oci: {reference: registry/x:1}}", "reference"},
		{"volume without a volume", "tokens: {default: x}\nhandlers: {source: volume}", "volume"},
		{"a runner without a name", "tokens: {default: x}\nrunners: [{defaultHandler: shell}]", "name"},
		{"no runner", "tokens: {default: x}\nrunners: []", "runners"},
		{"a runner key misspelt", "tokens: {default: x}\nrunners: [{name: default, default_handler: shell}]", "default_handler"},
		{"a size without a unit", "tokens: {default: x}\nrunners: [{name: default, outputLimit: 4096}]", "outputLimit"},
		{"a duration without a unit", "tokens: {default: x}\nconfig: {checkInterval: \"3\"}", "checkInterval"},
		{"no drain", "tokens: {default: x}\ndrain: {timeoutSeconds: 0}", "timeoutSeconds"},
		{"a log level wasmrunner lacks", "tokens: {default: x}\nconfig: {logLevel: loud}", "logLevel"},
		{"a digest that is a tag", "tokens: {default: x}\nimage: {digest: latest}", "digest"},
		{"saturation over 1", "tokens: {default: x}\nautoscaling: {targetSaturation: \"2\"}", "targetSaturation"},
		{"a ServiceMonitor without its Service", "tokens: {default: x}\nmetrics: {service: {enabled: false}, serviceMonitor: {enabled: true}}", "metrics.service.enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := deploy.Render(deploy.ChartDir, testRelease, values(t, tt.values))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestConfigChecksum: a change of the config file changes the pods'
// checksum (so the replicas roll), and nothing else does.
func TestConfigChecksum(t *testing.T) {
	sum := func(vals string) string {
		return one(t, "Deployments", render(t, vals).deploys).Spec.Template.Annotations["checksum/config"]
	}
	base := sum("tokens: {default: x}")
	if sum("tokens: {default: x}\nreplicaCount: 5") != base {
		t.Error("the replica count changed the config checksum")
	}
	if sum("tokens: {default: x}\nconfig: {concurrency: 9}") == base {
		t.Error("a config change left the checksum")
	}
}

// TestPlainManifests: manifests/wasmrunner.yaml is what the chart renders
// now (go run ./cmd/render writes it), and decodes strictly.
func TestPlainManifests(t *testing.T) {
	want, err := deploy.RenderPlain(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(deploy.PlainManifests)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from a fresh render of the chart: run `go run ./cmd/render` in deploy/", deploy.PlainManifests)
	}
	o := decode(t, []deploy.Manifest{{Template: deploy.PlainManifests, Body: string(got)}})
	if len(o.secrets) != 0 {
		t.Error("the plain manifests hold a Secret")
	}
	one(t, "Deployments", o.deploys)
}

// TestChartLint: helm lint's rules (Chart.yaml, values, templates, the
// schema) find no warning or error with the values of a real install
// (INFO only: the chart has no icon).
func TestChartLint(t *testing.T) {
	l := lint.RunAll(deploy.ChartDir, values(t, "tokens: {default: glrt-x}"), testRelease.Namespace)
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %v", m)
		} else {
			t.Logf("helm lint: %v", m)
		}
	}
}
