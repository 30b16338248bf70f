//! envrust: a handler built with the Rust SDK that shows, at each step,
//! what `std::env` (the process environment, not the SDK's `var`) says of
//! `CI_JOB_STATUS`, `GREETING` and `MINE`, then sets `MINE` (the next
//! step must not see it: each step gets the host's environment). A script
//! line "fail" fails the step.

use wasmrunner::{Handler, Phase};

struct Env;

impl Handler for Env {
    fn step(&mut self, script: &[String], phase: Phase) -> Result<(), i32> {
        let status = std::env::var("CI_JOB_STATUS").unwrap_or_else(|_| "(unset)".to_string());
        let greeting = std::env::var("GREETING").unwrap_or_default();
        let mine = std::env::var("MINE").unwrap_or_else(|_| "(unset)".to_string());
        std::env::set_var("MINE", "set by the handler");
        let phase = match phase {
            Phase::Script => "script",
            Phase::AfterScript => "after_script",
        };
        wasmrunner::outputln!("rust {}: CI_JOB_STATUS={} GREETING={} MINE={}", phase, status, greeting, mine);
        if script.iter().any(|l| l == "fail") {
            return Err(1);
        }
        Ok(())
    }
}

wasmrunner::register_handler!(|| Env);
