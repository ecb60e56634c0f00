//! Logs written by `tame::tensorboard` read back by the real `tensorboard` Python package:
//! EventAccumulator for scalars, histograms and text, and the HParams plugin's own backend
//! for the dashboard's sessions (hparams, status, final metrics).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tame::tensorboard::{config_markdown, EventWriter, HParams, SessionStatus};

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test` (or `bash scripts/setup.sh`) to install the Python \
         tensorboard package this test reads logs with",
        python.display()
    );
    python
}

fn write_run(dir: &Path, tau: &str, seed: u64, returns: &[f64], status: SessionStatus) {
    let mut w = EventWriter::create(dir).unwrap();
    let tau_value = match tau.parse::<f64>() {
        Ok(t) => HParams::new().with("tau", t),
        Err(_) => HParams::new().with("tau", tau),
    };
    let hp = tau_value
        .with("agent", "sac")
        .with("env", "pendulum")
        .with("seed", seed)
        .metric("eval/mean_return")
        .metric("charts/episodic_return");
    w.write_hparams(&hp).unwrap();
    #[derive(serde::Serialize)]
    struct Cfg<'a> {
        agent: &'a str,
        tau: &'a str,
        seed: u64,
    }
    let md = config_markdown(&Cfg { agent: "sac", tau, seed }).unwrap();
    w.add_text("config", 0, &md).unwrap();
    for (i, r) in returns.iter().enumerate() {
        let step = 1000 * (i as u64 + 1);
        w.add_scalar("charts/episodic_return", step, *r - 10.0).unwrap();
        w.add_scalar("eval/mean_return", step, *r).unwrap();
    }
    let q: Vec<f64> = (0..500).map(|i| f64::from(i) / 50.0 - 3.0).collect();
    w.add_histogram("losses/q_values", 3000, &q).unwrap();
    w.finish(status).unwrap();
}

#[test]
fn python_tensorboard_reads_scalars_text_histograms_and_hparams_sessions() {
    let python = python();
    let root = std::env::temp_dir().join(format!("tame-tb-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let run_a = "pendulum__sac__tau0.1__seed1__20250101-000000";
    let run_b = "pendulum__sac__tauauto__seed2__20250101-000001";
    write_run(&root.join(run_a), "0.1", 1, &[-900.0, -400.0, -180.5], SessionStatus::Success);
    write_run(&root.join(run_b), "auto", 2, &[-1000.0, -250.25], SessionStatus::Failure);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_tb.py");
    let out = Command::new(&python).arg(&script).arg(&root).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();

    // EventAccumulator: scalars, text, histograms.
    let a = &got["runs"][run_a];
    let eval: Vec<(u64, f64)> = a["scalars"]["eval/mean_return"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(eval, vec![(1000, -900.0), (2000, -400.0), (3000, -180.5)]);
    let text = a["texts"]["config"][0][1].as_str().unwrap();
    assert_eq!(text, "| key | value |\n|---|---|\n| agent | sac |\n| seed | 1 |\n| tau | 0.1 |\n");
    let h = &a["histograms"]["losses/q_values"][0];
    assert_eq!(h["step"], 3000);
    assert_eq!(h["num"], 500.0);
    assert_eq!(h["min"], -3.0);
    assert_eq!(h["max"], 6.98);
    let total: f64 = h["bucket"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).sum();
    assert_eq!(total, 500.0);

    // HParams dashboard: both runs listed with their hparams, status and final metrics.
    let hp = &got["hparams"];
    assert_eq!(hp["active"], true);
    assert_eq!(hp["hparam_columns"], serde_json::json!(["agent", "env", "seed", "tau"]));
    assert_eq!(
        hp["metric_columns"],
        serde_json::json!(["charts/episodic_return", "eval/mean_return"])
    );
    let sa = &hp["sessions"][run_a];
    assert_eq!(sa["hparams"]["tau"], 0.1);
    assert_eq!(sa["hparams"]["agent"], "sac");
    assert_eq!(sa["hparams"]["seed"], 1.0);
    assert_eq!(sa["status"], "STATUS_SUCCESS");
    assert_eq!(sa["metrics"]["eval/mean_return"], serde_json::json!([3000, -180.5]));
    let sb = &hp["sessions"][run_b];
    assert_eq!(sb["hparams"]["tau"], "auto");
    assert_eq!(sb["status"], "STATUS_FAILURE");
    assert_eq!(sb["metrics"]["eval/mean_return"], serde_json::json!([2000, -250.25]));
    assert_eq!(sb["metrics"]["charts/episodic_return"], serde_json::json!([2000, -260.25]));
    std::fs::remove_dir_all(&root).ok();
}

/// A run that dies after step 100 and is resumed from its checkpoint at step 60: the resumed
/// file opens with a SessionLog START at 61, so that TensorBoard drops 61..100 of the dead
/// process and shows the resumed process's points instead. Both readers must agree.
#[test]
fn a_resumed_run_shows_every_step_once_with_the_resumed_values_in_python_and_in_tame() {
    let python = python();
    let root = std::env::temp_dir().join(format!("tame-tb-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let run = "cartpole__es__tau0__seed1__20250101-000000";
    let dir = root.join(run);
    let log = |w: &mut EventWriter, steps: std::ops::RangeInclusive<u64>, offset: f64| {
        for step in steps {
            w.add_scalar("charts/episodic_return", step, step as f64 + offset).unwrap();
            w.add_scalar("losses/loss", step, -(step as f64) - offset).unwrap();
            if step % 10 == 0 {
                w.add_histogram("policy/entropy", step, &[step as f64 + offset, 1.0]).unwrap();
            }
        }
    };
    let mut first = EventWriter::create(&dir).unwrap();
    first.write_hparams(&HParams::new().with("agent", "es").with("seed", 1u64).metric("charts/episodic_return")).unwrap();
    first.add_text("config", 0, "| key | value |").unwrap();
    log(&mut first, 1..=100, 0.0);
    let first_path = first.path().to_path_buf();
    drop(first); // dies: no session end
    let mut resumed = EventWriter::resume(&dir, 61).unwrap();
    assert!(resumed.path() > first_path.as_path(), "{:?} sorts before {first_path:?}", resumed.path());
    log(&mut resumed, 61..=120, 1000.0);
    resumed.finish(SessionStatus::Success).unwrap();
    drop(resumed);

    let want = |step: u64, sign: f64| sign * (step as f64 + if step > 60 { 1000.0 } else { 0.0 });
    let want_scalars = |sign: f64| -> Vec<(u64, f64)> { (1..=120).map(|s| (s, want(s, sign))).collect() };
    let want_histograms: Vec<(u64, f64)> = (1..=12).map(|k| (10 * k, want(10 * k, 1.0))).collect();

    // tame's reader.
    let events = tame::tensorboard::read_events(&dir).unwrap();
    let ours = |tag: &str| -> Vec<(u64, f64)> { events.scalars[tag].iter().map(|p| (p.step, p.value)).collect() };
    assert_eq!(ours("charts/episodic_return"), want_scalars(1.0));
    assert_eq!(ours("losses/loss"), want_scalars(-1.0));
    let hist: Vec<(u64, f64)> = events.histograms["policy/entropy"].iter().map(|p| (p.step, p.max)).collect();
    assert_eq!(hist, want_histograms);
    assert_eq!(events.texts["config"].len(), 1);

    // TensorBoard's EventAccumulator.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_tb.py");
    let out = Command::new(&python).arg(&script).arg(&root).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs = |tag: &str| -> Vec<(u64, f64)> {
        got["runs"][run]["scalars"][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no {tag} in {}", got["runs"]))
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(theirs("charts/episodic_return"), want_scalars(1.0));
    assert_eq!(theirs("losses/loss"), want_scalars(-1.0));
    let hist: Vec<(u64, f64)> = got["runs"][run]["histograms"]["policy/entropy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["step"].as_u64().unwrap(), h["max"].as_f64().unwrap()))
        .collect();
    assert_eq!(hist, want_histograms);
    assert_eq!(got["runs"][run]["texts"]["config"].as_array().unwrap().len(), 1);

    // `tame inspect` reads through the same rule: 120 points, the last from the resumed file.
    let out = Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(["inspect", "--json", "--tag", "charts/episodic_return"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["points"], 120);
    assert_eq!(rows[0]["steps"], 120);
    assert_eq!(rows[0]["last"], 1120.0);
    assert_eq!(rows[0]["status"], "success");
    std::fs::remove_dir_all(&root).ok();
}
