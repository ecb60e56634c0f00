//! Round trips through the writer and the reader, with every record's CRC checked.

use std::path::PathBuf;
use std::time::Duration;

use super::record;
use super::*;

/// A fresh directory under the system temp dir, unique to this test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-tb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn every_record_type_round_trips() {
    let dir = scratch_dir("roundtrip");
    let mut w = EventWriter::create(&dir).unwrap();
    let hp = HParams::new()
        .with("agent", "sac")
        .with("env", "pendulum")
        .with("tau", 0.1)
        .with("seed", 7u64)
        .with("auto_tau", false)
        .metric("eval/mean_return")
        .metric("charts/episodic_return");
    w.write_hparams(&hp).unwrap();
    w.add_text("config", 0, "| key | value |\n|---|---|\n| tau | 0.1 |\n").unwrap();
    for step in 0..100u64 {
        w.add_scalar("losses/qf1_loss", step, 1.0 / (step as f64 + 1.0)).unwrap();
    }
    w.add_scalar("eval/mean_return", 100, -150.25).unwrap();
    let values: Vec<f64> = (0..1000).map(|i| (f64::from(i) * 0.37).sin()).collect();
    w.add_histogram("policy/entropy", 50, &values).unwrap();
    w.finish(SessionStatus::Success).unwrap();
    let file = w.path().to_path_buf();
    drop(w);

    for run in [read_events(&dir).unwrap(), read_events(&file).unwrap()] {
        assert!(run.problems.is_empty(), "{:?}", run.problems);
        assert_eq!(run.files, vec![file.clone()]);

        let loss = &run.scalars["losses/qf1_loss"];
        assert_eq!(loss.len(), 100);
        for (i, p) in loss.iter().enumerate() {
            assert_eq!(p.step, i as u64);
            // Stored as f32, as TensorBoard does.
            assert_eq!(p.value, f64::from((1.0 / (i as f64 + 1.0)) as f32));
            assert!(p.wall_time > 1.6e9);
        }
        assert_eq!(run.scalars["eval/mean_return"][0].value, -150.25);
        assert_eq!(run.last_step(), Some(100));

        let h = &run.histograms["policy/entropy"][0];
        assert_eq!(h.step, 50);
        assert_eq!(h.num, 1000.0);
        assert_eq!(h.buckets.iter().sum::<f64>(), 1000.0);
        assert_eq!(h.min, values.iter().cloned().fold(f64::INFINITY, f64::min));
        assert_eq!(h.max, *h.bucket_limits.last().unwrap());
        assert!((h.sum - values.iter().sum::<f64>()).abs() < 1e-9);

        assert_eq!(run.texts["config"][0].text, "| key | value |\n|---|---|\n| tau | 0.1 |\n");

        let got = run.hparams.as_ref().unwrap();
        assert_eq!(got.values, hp.values);
        assert_eq!(got.metrics, hp.metrics);
        assert!(got.start_time.is_some());
        assert_eq!(got.end.map(|(s, _)| s), Some(SessionStatus::Success));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hparams_without_metrics_write_no_experiment_record() {
    let dir = scratch_dir("nometrics");
    let mut w = EventWriter::create(&dir).unwrap();
    w.write_hparams(&HParams::new().with("sigma", 0.02)).unwrap();
    drop(w);
    let run = read_events(&dir).unwrap();
    let hp = run.hparams.unwrap();
    assert_eq!(hp.values["sigma"], HParamValue::Num(0.02));
    assert!(hp.metrics.is_empty());
    assert_eq!(hp.end, None);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn two_writers_in_one_directory_in_one_second_keep_separate_files() {
    let dir = scratch_dir("twowriters");
    let mut a = EventWriter::create(&dir).unwrap();
    let mut b = EventWriter::create(&dir).unwrap();
    assert_ne!(a.path(), b.path());
    for step in 0..10 {
        a.add_scalar("a", step, 1.0).unwrap();
        b.add_scalar("b", step, 2.0).unwrap();
    }
    drop(a);
    drop(b);
    let run = read_events(&dir).unwrap();
    assert_eq!(run.files.len(), 2);
    assert_eq!(run.scalars["a"].len(), 10);
    assert_eq!(run.scalars["b"].len(), 10);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn damaged_tail_is_reported_and_earlier_records_kept() {
    let dir = scratch_dir("damage");
    let mut w = EventWriter::create(&dir).unwrap();
    for step in 0..20 {
        w.add_scalar("x", step, step as f64).unwrap();
    }
    w.flush().unwrap();
    let file = w.path().to_path_buf();
    drop(w);
    let clean = std::fs::read(&file).unwrap();

    let (frames, _) = record::split_frames(&clean);
    let last_len = frames.last().unwrap().len() + 16;
    let last = clean[clean.len() - last_len..].to_vec();

    // The file cut inside its last record: the 19 before it survive.
    std::fs::write(&file, &clean[..clean.len() - 3]).unwrap();
    let run = read_events(&file).unwrap();
    assert_eq!(run.scalars["x"].len(), 19);
    assert_eq!(run.problems.len(), 1);
    assert!(run.problems[0].contains("truncated"), "{:?}", run.problems);

    // Half a record appended (a write cut short by a kill): all 20 complete ones are kept.
    let mut cut = clean.clone();
    cut.extend_from_slice(&last[..last_len / 2]);
    std::fs::write(&file, &cut).unwrap();
    let run = read_events(&file).unwrap();
    assert_eq!(run.scalars["x"].len(), 20);
    assert!(run.problems[0].contains("truncated"), "{:?}", run.problems);

    // A flipped bit in the last record's payload: its CRC fails, the 19 before it stay.
    let mut flipped = clean.clone();
    let at = flipped.len() - 6;
    flipped[at] ^= 0x08;
    std::fs::write(&file, &flipped).unwrap();
    let run = read_events(&file).unwrap();
    assert_eq!(run.scalars["x"].len(), 19);
    assert!(run.problems[0].contains("corrupt"), "{:?}", run.problems);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_write_after_the_flush_interval_makes_everything_durable() {
    let dir = scratch_dir("timer");
    let mut w = EventWriter::create(&dir).unwrap();
    w.set_flush_interval(Duration::from_millis(50));
    w.add_scalar("x", 0, 1.0).unwrap();
    // Still buffered: the interval has not passed.
    assert!(!read_events(&dir).unwrap().scalars.contains_key("x"));
    std::thread::sleep(Duration::from_millis(60));
    w.add_scalar("x", 1, 2.0).unwrap();
    // Read while the writer is still open: both are in the file.
    assert_eq!(read_events(&dir).unwrap().scalars["x"].len(), 2);
    drop(w);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = scratch_dir("errors");
    let mut w = EventWriter::create(&dir).unwrap();
    let err = w.add_scalar("x", u64::MAX, 1.0).unwrap_err().to_string();
    assert!(err.contains("18446744073709551615"), "{err}");
    let err = format!("{:#}", w.add_histogram("q", 3, &[1.0, f64::INFINITY]).unwrap_err());
    assert!(err.contains("\"q\"") && err.contains("inf"), "{err}");
    assert!(w.add_histogram("q", 3, &[]).is_err());
    let err = w.write_hparams(&HParams::new().with("tau", f64::NAN)).unwrap_err().to_string();
    assert!(err.contains("tau"), "{err}");
    drop(w);

    // A log directory that is a file.
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    assert!(EventWriter::create(&file).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn runs_are_found_at_any_depth() {
    let root = scratch_dir("findruns");
    for sub in ["sweep/a", "sweep/b", "c"] {
        let mut w = EventWriter::create(&root.join(sub)).unwrap();
        w.add_scalar("x", 0, 0.0).unwrap();
    }
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let runs = find_runs(&root).unwrap();
    let names: Vec<_> = runs.iter().map(|r| r.strip_prefix(&root).unwrap()).collect();
    assert_eq!(names, [PathBuf::from("c"), "sweep/a".into(), "sweep/b".into()]);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_resumed_file_sorts_after_files_from_other_hosts_and_skewed_clocks() {
    let dir = scratch_dir("resume-order");
    std::fs::create_dir_all(&dir).unwrap();
    // Written by another machine whose clock ran ahead; its host and pid sort after ours.
    let foreign = dir.join("events.out.tfevents.1999999999.zz-other-host.99999.7");
    let mut w = EventWriter::create(&dir).unwrap();
    w.add_scalar("x", 1, 1.0).unwrap();
    drop(w);
    std::fs::rename(super::files::event_files(&dir).unwrap().pop().unwrap(), &foreign).unwrap();
    let resumed = EventWriter::resume(&dir, 2).unwrap();
    assert!(resumed.path() > foreign.as_path(), "{:?} sorts before {foreign:?}", resumed.path());
    let again = EventWriter::resume(&dir, 3).unwrap();
    assert!(again.path() > resumed.path(), "{:?} sorts before {:?}", again.path(), resumed.path());
    assert_eq!(super::files::event_files(&dir).unwrap().last().map(PathBuf::as_path), Some(again.path()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resuming_after_a_file_with_a_foreign_name_is_refused_naming_it() {
    let dir = scratch_dir("resume-foreign");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("events.out.tfevents.zzz"), b"").unwrap();
    let err = EventWriter::resume(&dir, 5).unwrap_err().to_string();
    assert!(err.contains("events.out.tfevents.zzz"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_start_at_step_s_drops_the_points_read_before_with_step_s_or_more() {
    let dir = scratch_dir("purge");
    let mut w = EventWriter::create(&dir).unwrap();
    w.write_hparams(&HParams::new().with("seed", 1u64)).unwrap();
    w.add_text("config", 0, "c").unwrap();
    for step in 1..=10 {
        w.add_scalar("a", step, step as f64).unwrap();
        w.add_histogram("h", step, &[step as f64]).unwrap();
    }
    w.add_text("late", 9, "dropped").unwrap();
    drop(w);
    let mut w = EventWriter::resume(&dir, 6).unwrap();
    w.add_scalar("a", 6, 60.0).unwrap();
    drop(w);
    let run = read_events(&dir).unwrap();
    let a: Vec<(u64, f64)> = run.scalars["a"].iter().map(|p| (p.step, p.value)).collect();
    assert_eq!(a, vec![(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 60.0)]);
    assert_eq!(run.histograms["h"].iter().map(|p| p.step).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert!(!run.texts.contains_key("late"));
    assert_eq!(run.texts["config"].len(), 1);
    assert!(run.hparams.is_some(), "hparams at step 0 survive a START at 6");
    assert_eq!(run.files.len(), 2);
    assert!(run.problems.is_empty(), "{:?}", run.problems);
    std::fs::remove_dir_all(&dir).unwrap();
}
