//! `tame inspect`: one row per run with fields from hparams, config.toml or the run's name,
//! in table, CSV and JSON form; bad paths are clear errors.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use tame::tensorboard::{EventWriter, HParams, SessionStatus};

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame")).args(args).output().unwrap()
}

fn log_returns(dir: &Path, returns: &[f64]) -> EventWriter {
    let mut w = EventWriter::create(dir).unwrap();
    for (i, r) in returns.iter().enumerate() {
        w.add_scalar("eval/mean_return", 100 * (i as u64 + 1), *r).unwrap();
    }
    w.add_scalar("losses/actor_loss", 250, 0.5).unwrap();
    w
}

#[test]
fn inspect_reports_each_run_from_hparams_config_or_name() {
    let root = std::env::temp_dir().join(format!("tame-inspect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);

    // hparams win over the run's name.
    let a = root.join("sweep/frozenlake__sac__tau9__seed9__t0");
    let mut w = log_returns(&a, &[0.25, 0.75, 0.5]);
    let hp = HParams::new().with("agent", "sac").with("env", "frozenlake").with("tau", 0.1);
    w.write_hparams(&hp.with("seed", 1u64)).unwrap();
    w.finish(SessionStatus::Success).unwrap();
    drop(w);

    // No hparams: config.toml (nested table), and the name for what it lacks.
    let b = root.join("sweep/b");
    drop(log_returns(&b, &[-3.0, -1.0]));
    std::fs::write(
        b.join("config.toml"),
        "agent = \"es\"\n[train]\nenv = \"cartpole\"\ntau = 0.5\n",
    )
    .unwrap();

    // Only the name.
    let c = root.join("pendulum__sac__tauauto__seed4__20250101-000000");
    drop(log_returns(&c, &[-1200.0]));

    let out = tame(&["inspect", root.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = json!([
        {"run": "pendulum__sac__tauauto__seed4__20250101-000000", "agent": "sac",
         "env": "pendulum", "tau": "auto", "seed": 4, "steps": 250, "status": null,
         "last": -1200.0, "best": -1200.0, "mean": -1200.0, "points": 1},
        {"run": "sweep/b", "agent": "es", "env": "cartpole", "tau": 0.5, "seed": null,
         "steps": 250, "status": null, "last": -1.0, "best": -1.0, "mean": -2.0, "points": 2},
        {"run": "sweep/frozenlake__sac__tau9__seed9__t0", "agent": "sac", "env": "frozenlake",
         "tau": 0.1, "seed": 1, "steps": 300, "status": "success",
         "last": 0.5, "best": 0.75, "mean": 0.5, "points": 3},
    ]);
    assert_eq!(rows, want);

    let out = tame(&["inspect", root.join("sweep").to_str().unwrap(), "--csv"]);
    let csv = String::from_utf8(out.stdout).unwrap();
    let want_csv = "run,agent,env,tau,seed,steps,status,last,best,mean,points\n\
                    b,es,cartpole,0.5,,250,,-1.000,-1.000,-2.000,2\n\
                    frozenlake__sac__tau9__seed9__t0,sac,frozenlake,0.1,1,300,success,\
                    0.500,0.750,0.500,3\n";
    assert_eq!(csv, want_csv);

    // A single run directory, another tag, as a table.
    let out = tame(&["inspect", c.to_str().unwrap(), "--tag", "losses/actor_loss"]);
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].ends_with("of losses/actor_loss"), "{table}");
    assert!(lines[1].starts_with("run") && lines[1].ends_with("last   best   mean  points"));
    assert!(lines[2].starts_with("pendulum__sac__tauauto__seed4__20250101-000000  sac"));
    assert!(lines[2].ends_with("250          0.500  0.500  0.500       1"), "{table}");

    // A tag nobody logged: empty cells and a warning that lists the logged ones.
    let out = tame(&["inspect", c.to_str().unwrap(), "--tag", "nope"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"nope\"") && err.contains("eval/mean_return"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn inspect_rejects_missing_paths_and_empty_directories() {
    let missing = std::env::temp_dir().join("tame-inspect-definitely-missing");
    let out = tame(&["inspect", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    let empty = std::env::temp_dir().join(format!("tame-inspect-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = tame(&["inspect", empty.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no TensorBoard event files"));
    std::fs::remove_dir_all(&empty).ok();

    let out = tame(&["inspect", ".", "--csv", "--json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
