//! The job, its phase and its variables.

use std::time::Duration;

use crate::buf::{read_growing, read_string, split_list};
use crate::sys;

/// The step a handler runs: the job's `script`, or its `after_script`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The job's `script` (and `before_script`), ABI code 0.
    Script,
    /// The job's `after_script`, ABI code 1. It runs also after the script
    /// failed or the job was cancelled; the variable `CI_JOB_STATUS` says
    /// how the script ended (`success`, `failed` or `canceled`).
    AfterScript,
}

impl Phase {
    /// The phase of an ABI code, if known.
    ///
    /// ```
    /// use wasmrunner::Phase;
    /// assert_eq!(Phase::from_code(1), Some(Phase::AfterScript));
    /// assert_eq!(Phase::from_code(9), None);
    /// ```
    pub fn from_code(code: i32) -> Option<Phase> {
        match code {
            0 => Some(Phase::Script),
            1 => Some(Phase::AfterScript),
            _ => None,
        }
    }

    /// The ABI code of the phase.
    pub fn code(self) -> i32 {
        match self {
            Phase::Script => 0,
            Phase::AfterScript => 1,
        }
    }
}

/// The phase of the running step (see [`Phase`]).
///
/// ```
/// if wasmrunner::phase() == wasmrunner::Phase::AfterScript {
///     wasmrunner::outputln!("cleaning up");
/// }
/// ```
pub fn phase() -> Phase {
    Phase::from_code(sys::phase()).unwrap_or(Phase::Script)
}

/// What a handler knows about its job: see [`job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job's id.
    pub id: i64,
    /// The id of the job's project.
    pub project_id: i64,
    /// The job's timeout (whole seconds).
    pub timeout: Duration,
    /// The job's name (e.g. `build:linux`).
    pub name: String,
    /// The job's stage.
    pub stage: String,
    /// The name of the job's project.
    pub project_name: String,
    /// The job's image name: the handler it was routed to, as written in
    /// `.gitlab-ci.yml`, or empty.
    pub image: String,
}

fn job_string(field: i32) -> String {
    read_string(|buf| sys::job_string(field, buf)).unwrap_or_default()
}

/// The running job's fields.
///
/// ```
/// let job = wasmrunner::job();
/// wasmrunner::outputln!("job {} ({}) in stage {}, timeout {:?}", job.id, job.name, job.stage, job.timeout);
/// ```
pub fn job() -> Job {
    let timeout = sys::job_timeout();
    Job {
        id: sys::job_id(),
        project_id: sys::job_project_id(),
        timeout: Duration::from_secs(if timeout > 0 { timeout as u64 } else { 0 }),
        name: job_string(0),
        stage: job_string(1),
        project_name: job_string(2),
        image: job_string(3),
    }
}

/// The script lines of the running step (the handler glue passes them to
/// [`Handler::step`](crate::Handler::step) already).
///
/// ```
/// for line in wasmrunner::script() {
///     wasmrunner::outputln!("$ {line}");
/// }
/// ```
pub fn script() -> Vec<String> {
    let n = sys::script_count();
    (0..n.max(0))
        .filter_map(|i| read_string(|buf| sys::script_line(i, buf)).ok())
        .collect()
}

/// A job variable the handler may see: see [`variables`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Whether GitLab masks it: the runner replaces it with `[MASKED]` in
    /// the job log anyway.
    pub masked: bool,
}

/// The value of the job variable `name`, or None if the job has no such
/// variable or the handler's manifest hides it.
///
/// ```
/// let branch = wasmrunner::var("CI_COMMIT_BRANCH").unwrap_or_else(|| "main".to_string());
/// wasmrunner::outputln!("branch {branch}");
/// ```
pub fn var(name: &str) -> Option<String> {
    read_string(|buf| sys::var_get(name.as_bytes(), buf)).ok()
}

/// Whether the job variable `name` is masked, or None if there is no
/// such variable.
///
/// ```
/// if wasmrunner::var_masked("API_TOKEN") == Some(false) {
///     wasmrunner::outputln!("warning: API_TOKEN is not masked");
/// }
/// ```
pub fn var_masked(name: &str) -> Option<bool> {
    match sys::var_masked(name.as_bytes()) {
        r if r < 0 => None,
        r => Some(r == 1),
    }
}

/// The names of the variables the handler may see, in the job's order.
///
/// ```
/// let names = wasmrunner::var_names();
/// wasmrunner::outputln!("{} variables", names.len());
/// ```
pub fn var_names() -> Vec<String> {
    read_growing(sys::var_names)
        .map(|b| split_list(&b))
        .unwrap_or_default()
}

/// All the variables the handler may see, in the job's order, each name
/// once (the value of its last definition).
///
/// ```
/// for v in wasmrunner::variables() {
///     if !v.masked {
///         wasmrunner::outputln!("{}={}", v.name, v.value);
///     }
/// }
/// ```
pub fn variables() -> Vec<Variable> {
    var_names()
        .into_iter()
        .filter_map(|name| {
            let value = var(&name)?;
            let masked = var_masked(&name).unwrap_or(false);
            Some(Variable {
                name,
                value,
                masked,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, FakeHost};

    #[test]
    fn job_fields() {
        FakeHost::new()
            .job_id(42)
            .project_id(7)
            .timeout(Duration::from_secs(3600))
            .name("build")
            .project_name("proj")
            .image(&"x".repeat(300))
            .phase(Phase::AfterScript)
            .install();
        let j = job();
        assert_eq!(j.id, 42);
        assert_eq!(j.project_id, 7);
        assert_eq!(j.timeout, Duration::from_secs(3600));
        assert_eq!(
            (j.name.as_str(), j.stage.as_str(), j.project_name.as_str()),
            ("build", "test", "proj")
        );
        assert_eq!(j.image, "x".repeat(300));
        assert_eq!(phase(), Phase::AfterScript);
    }

    #[test]
    fn vars() {
        let long = "v".repeat(5000);
        FakeHost::new()
            .var("A", "1")
            .masked_var("SECRET", "hunter2")
            .var("LONG", &long)
            .var("A", "2")
            .install();
        assert_eq!(var("A").as_deref(), Some("2"));
        assert_eq!(var("LONG"), Some(long.clone()));
        assert_eq!(var("NOPE"), None);
        assert_eq!(var_masked("SECRET"), Some(true));
        assert_eq!(var_masked("A"), Some(false));
        assert_eq!(var_masked("NOPE"), None);
        assert_eq!(var_names(), vec!["A", "SECRET", "LONG"]);
        let vs = variables();
        assert_eq!(vs.len(), 3);
        assert_eq!(
            vs[0],
            Variable {
                name: "A".into(),
                value: "2".into(),
                masked: false
            }
        );
        assert!(vs[1].masked);
        assert_eq!(vs[2].value, long);
        crate::outputln!("secret={}", var("SECRET").unwrap());
        assert_eq!(testing::log(), "secret=[MASKED]\n");
    }

    #[test]
    fn script_lines() {
        FakeHost::new()
            .script(["echo hi".to_string(), "y".repeat(1000), String::new()])
            .after_script(["after"])
            .install();
        assert_eq!(
            script(),
            vec!["echo hi".to_string(), "y".repeat(1000), String::new()]
        );
        FakeHost::new()
            .after_script(["after"])
            .phase(Phase::AfterScript)
            .install();
        assert_eq!(script(), vec!["after"]);
        assert_eq!(var("CI_JOB_STATUS").as_deref(), Some("success"));
    }
}
