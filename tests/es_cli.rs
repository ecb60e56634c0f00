//! `tame train --agent es`, `tame eval` and `tame bench es` from the command line: bad input
//! is refused with a message naming it, and runs are reproducible on any thread count.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(args)
        .output()
        .expect("the tame binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-es-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs tame, expects failure, and returns stderr.
fn refused(args: &[&str]) -> String {
    let out = tame(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{args:?} should fail; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    stderr
}

#[test]
fn bad_es_settings_are_refused_by_name() {
    let logdir = scratch("bad");
    let logdir = logdir.to_str().unwrap();
    let train = [
        "train", "--agent", "es", "--env", "cartpole", "--steps", "1000", "--quiet", "--logdir",
        logdir,
    ];

    let err = refused(&[&train[..], &["--sigma", "0"]].concat());
    assert!(err.contains("sigma 0") && err.contains("> 0"), "{err}");
    let err = refused(&[&train[..], &["--sigma", "-0.5"]].concat());
    assert!(err.contains("sigma -0.5"), "{err}");
    let err = refused(&[&train[..], &["--tau", "-1"]].concat());
    assert!(err.contains("-1") && err.contains(">= 0"), "{err}");
    let err = refused(&[&train[..], &["--tau", "auto"]].concat());
    assert!(err.contains("auto") && err.contains("es"), "{err}");
    let err = refused(&[
        "train", "--agent", "sac", "--sigma", "0.1", "--logdir", logdir,
    ]);
    assert!(err.contains("--sigma"), "{err}");

    let config = Path::new(logdir).join("odd.toml");
    std::fs::write(
        &config,
        "agent = \"es\"\nenv = \"cartpole\"\n[es]\npopulation = 7\n",
    )
    .unwrap();
    let err = refused(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--quiet",
        "--logdir",
        logdir,
    ]);
    assert!(
        err.contains("population 7") && err.contains("even"),
        "{err}"
    );
    std::fs::write(&config, "agent = \"es\"\n[es]\npopulation = 0\n").unwrap();
    let err = refused(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--quiet",
        "--logdir",
        logdir,
    ]);
    assert!(err.contains("population 0"), "{err}");
    std::fs::write(&config, "agent = \"es\"\n[es]\nsigmaa = 0.1\n").unwrap();
    let err = refused(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--quiet",
        "--logdir",
        logdir,
    ]);
    assert!(err.contains("sigmaa") && err.contains("sigma"), "{err}");

    let err = refused(&["bench", "es", "--pop", "7", "--generations", "1"]);
    assert!(err.contains("population 7"), "{err}");
    let err = refused(&["bench", "es", "--env", "nosuchenv", "--generations", "1"]);
    assert!(
        err.contains("nosuchenv") && err.contains("cartpole"),
        "{err}"
    );
    // Nothing was trained by any refused command.
    let runs = std::fs::read_dir(logdir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(runs, 0);
    std::fs::remove_dir_all(logdir).unwrap();
}

fn summary(dir: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(dir.trim()).join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn es_runs_are_reproducible_across_thread_counts_and_reload() {
    let logdir = scratch("repro");
    let logdir = logdir.to_str().unwrap();
    let run = |threads: &str| {
        let out = tame(&[
            "train",
            "--agent",
            "es",
            "--env",
            "pendulum",
            "--steps",
            "300000",
            "--seed",
            "7",
            "--tau",
            "0.2",
            "--threads",
            threads,
            "--quiet",
            "--logdir",
            logdir,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (one, two) = (run("1"), run("2"));
    let (a, b) = (summary(&one), summary(&two));
    for key in [
        "steps",
        "final_eval_returns",
        "final_policy_entropy",
        "tau",
        "seed",
        "agent",
        "env",
    ] {
        assert_eq!(a[key], b[key], "{key} differs between 1 and 2 threads");
    }
    assert_eq!(a["agent"], "es");
    assert!(a["steps"].as_u64().unwrap() >= 300_000);
    let checkpoint = format!("checkpoints/step-{:012}/tensors.safetensors", a["steps"].as_u64().unwrap());
    assert!(Path::new(&one).join(checkpoint).exists());

    // The logs hold ES's tags and, at the last evaluation, the histogram of its returns.
    let events = tame::tensorboard::read_events(Path::new(&one)).unwrap();
    for tag in ["es/sigma", "es/grad_norm", "es/mean_fitness", "eval/mean_return"] {
        assert!(events.scalars.contains_key(tag), "{tag} missing");
    }
    let last = events.histograms["eval/returns"].last().unwrap();
    let returns = a["final_eval_returns"].as_array().unwrap();
    assert_eq!(last.num as usize, returns.len());
    let sum: f64 = returns.iter().map(|r| r.as_f64().unwrap()).sum();
    assert!((last.sum - sum).abs() < 1e-6 * sum.abs().max(1.0), "{} vs {sum}", last.sum);

    // The checkpoint reloads into the same deterministic evaluation.
    let out = tame(&["eval", &one, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["returns"], a["final_eval_returns"]);
    assert_eq!(eval["checkpoint_step"], a["steps"]);
    std::fs::remove_dir_all(logdir).unwrap();
}

#[test]
fn bench_es_prints_speed_as_json() {
    let out = tame(&[
        "bench",
        "es",
        "--env",
        "cartpole",
        "--pop",
        "16",
        "--hidden",
        "8",
        "--generations",
        "2",
        "--threads",
        "1,2",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, threads) in lines.iter().zip([1, 2]) {
        assert_eq!(line["threads"], threads);
        assert_eq!(line["pop"], 16);
        assert!(line["env_steps_per_sec"].as_f64().unwrap() > 0.0);
        assert!(line["generations_per_sec"].as_f64().unwrap() > 0.0);
        assert!(
            line["env_steps"].as_u64().unwrap() >= 2 * 16 * 8,
            "CartPole episodes last ≥ 8 steps"
        );
    }
}
