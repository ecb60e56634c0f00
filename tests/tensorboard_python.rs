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
