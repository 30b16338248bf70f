//! Unit tests of the handler through the SDK's fake host
//! (`wasmrunner::testing`): whole jobs, without WebAssembly. The file
//! commands work in a temporary dir that stands for the build dir.
//! `shell_test.go` runs the built `shell.wasm` through the real engine.

use std::path::PathBuf;
use std::time::Duration;

use wasmrunner::testing::{self, FakeHost};

use crate::ShellHandler;

/// A temporary build dir, removed at the end of the test.
struct BuildDir(PathBuf);

impl BuildDir {
    fn new(test: &str) -> BuildDir {
        let dir = std::env::temp_dir().join(format!("shell-test-{}-{}", std::process::id(), test));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        BuildDir(dir)
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a job on the shell with the fake host `host`, in a fresh build
/// dir, and returns its exit code and log.
fn run(test: &str, host: FakeHost) -> (i32, String) {
    let dir = BuildDir::new(test);
    host.build_dir(&dir.0).install();
    let mut shell = ShellHandler {
        root: dir.0.to_str().unwrap().to_string(),
    };
    (testing::run(&mut shell), testing::log())
}

/// How the shell echoes a command line.
fn echoed(line: &str) -> String {
    format!("\x1b[32;1m$ {}\x1b[0;m\n", line)
}

#[test]
fn echo_and_quotes() {
    let (code, log) = run(
        "echo",
        FakeHost::new().script([
            r#"echo hello   world"#,
            r#"echo -n no-newline; echo " end""#,
            r#"echo 'single $HOME' "a  b" \$x a\ b"#,
        ]),
    );
    assert_eq!(code, 0);
    assert_eq!(
        log,
        echoed("echo hello   world")
            + "hello world\n"
            + &echoed(r#"echo -n no-newline; echo " end""#)
            + "no-newline end\n"
            + &echoed(r#"echo 'single $HOME' "a  b" \$x a\ b"#)
            + "single $HOME a  b $x a b\n"
    );
}

#[test]
fn variables_and_masking() {
    let (code, log) = run(
        "vars",
        FakeHost::new()
            .script([
                r#"echo "g=$GREETING" ${NOPE:-fallback}"#,
                "echo secret=$SECRET",
                "export Y=exported && printenv Y",
                "unset GREETING; echo \"[$GREETING]\"",
                "env",
            ])
            .var("GREETING", "hello there")
            .masked_var("SECRET", "hunter2-is-masked"),
    );
    assert_eq!(code, 0, "{}", log);
    for want in [
        "\ng=hello there fallback\n",
        "\nsecret=[MASKED]\n",
        "\nexported\n",
        "\n[]\n",
        "\nSECRET=[MASKED]\nY=exported\n",
    ] {
        assert!(log.contains(want), "log lacks {:?}:\n{}", want, log);
    }
    assert!(!log.contains("hunter2"));
}

#[test]
fn exit_codes() {
    for (script, code, want) in [
        (vec!["echo before", "exit 3", "echo after"], 3, "\nbefore\n"),
        (vec!["false || echo \"status $?\"", "true"], 0, "\nstatus 1\n"),
        (vec!["false; echo not-reached"], 1, ""),
        (vec!["nosuchcmd --flag"], 127, "sh: nosuchcmd: command not found"),
        (vec!["echo 'unterminated"], 2, "unexpected EOF while looking for matching"),
        (vec!["[ a = b ]"], 1, ""),
    ] {
        let (got, log) = run("exit", FakeHost::new().script(script.clone()));
        assert_eq!(got, code, "{:?}:\n{}", script, log);
        assert!(log.contains(want), "{:?}: log lacks {:?}:\n{}", script, want, log);
        assert!(!log.contains("\nafter\n") && !log.contains("\nnot-reached\n"));
    }
}

#[test]
fn pipes() {
    let (code, log) = run(
        "pipes",
        FakeHost::new().script(["seq 1 2 7 | wc -l", "seq 100 | head -n 2"]),
    );
    assert_eq!(code, 0);
    assert!(log.contains(&(echoed("seq 1 2 7 | wc -l") + "4\n")), "{}", log);
    assert!(log.contains(&(echoed("seq 100 | head -n 2") + "1\n2\n")), "{}", log);
}

#[test]
fn files_in_the_build_dir() {
    let (code, log) = run(
        "files",
        FakeHost::new().script([
            "mkdir -p a/b && echo one > a/b/f.txt",
            "echo two >> a/b/f.txt",
            "cd a && pwd && cat b/f.txt",
            "cp -r /a /copy && ls /copy/b",
            "rm -r /a && ls /",
            "cat missing.txt",
        ]),
    );
    assert_eq!(code, 1, "{}", log);
    assert!(log.contains(&(echoed("cd a && pwd && cat b/f.txt") + "/a\none\ntwo\n")), "{}", log);
    assert!(log.contains(&(echoed("cp -r /a /copy && ls /copy/b") + "f.txt\n")), "{}", log);
    assert!(log.contains(&(echoed("rm -r /a && ls /") + "copy\n")), "{}", log);
    assert!(log.ends_with("cat: missing.txt: No such file or directory\n"), "{}", log);
}

#[test]
fn dependencies_and_artifacts() {
    let (code, log) = run(
        "artifacts",
        FakeHost::new()
            .dependency(7, "build", [("dep.txt", "from the dependency\n")])
            .script([
                "cat dep.txt",
                "mkdir out && echo extra > out/extra.txt && cd out && artifact extra.txt",
                "artifact nope.txt",
            ]),
    );
    assert_eq!(code, 1, "{}", log);
    assert!(log.contains(&(echoed("cat dep.txt") + "from the dependency\n")), "{}", log);
    assert!(log.contains("artifact: nope.txt: No such file or directory"), "{}", log);
    let artifacts: Vec<(String, Vec<u8>)> = testing::artifacts().into_iter().collect();
    assert_eq!(artifacts, vec![("out/extra.txt".to_string(), b"extra\n".to_vec())]);
}

#[test]
fn after_script_runs_in_a_fresh_shell() {
    let (code, log) = run(
        "after",
        FakeHost::new()
            .script(["mkdir sub && cd sub && X=1", "exit 4"])
            .after_script([r#"echo "status=$CI_JOB_STATUS x=[$X]" && pwd"#]),
    );
    assert_eq!(code, 4);
    assert!(log.ends_with("\nstatus=failed x=[]\n/\n"), "{}", log);
}

#[test]
fn sleep_stops_when_the_job_is_cancelled() {
    let (code, log) = run(
        "sleep",
        FakeHost::new()
            .script(["sleep 0.25 && echo slept", "sleep 30", "echo woke"])
            .after_script([r#"echo "after: $CI_JOB_STATUS""#])
            .on_sleep(|d| {
                if d == Duration::from_secs(30) {
                    testing::cancel();
                }
            }),
    );
    assert_eq!(code, crate::STATUS_CANCELED, "{}", log);
    assert_eq!(
        testing::sleeps(),
        vec![Duration::from_millis(250), Duration::from_secs(30)]
    );
    assert!(log.contains("\nslept\n") && !log.contains("\nwoke\n"), "{}", log);
    assert!(log.ends_with("\nafter: canceled\n"), "{}", log);
}
