//! `tame render` and `tame train --capture-video` end to end on tiny real runs: GIFs decode
//! with one frame per state of the episode (the start and one per step), replays match the
//! run's own evaluation, TensorBoard images read back with the Python `tensorboard` package,
//! and bad input gets a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tame(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame")).args(args).output().expect("running tame")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-render-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `tame train --quiet` with `args` and returns the run directory it printed.
fn train(args: &[&str]) -> PathBuf {
    let out = tame(&[&["train", "--quiet", "--threads", "1"], args].concat());
    assert!(out.status.success(), "tame train failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// `tame render RUN --ansi`: its text and the step count of its first episode's line.
fn render_ansi(run: &str) -> (String, usize) {
    let out = tame(&["render", run, "--ansi"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let steps: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("episode 1 (seed 1000000): return ").map(|rest| rest.split(" over ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()))
        .unwrap_or_else(|| panic!("no episode line in {text}"));
    (text, steps)
}

fn final_eval_returns(dir: &Path) -> Vec<f64> {
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    s["final_eval_returns"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

/// Frame count and size of a GIF, decoded frame by frame.
fn decode_gif(path: &Path) -> (usize, u16, u16) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let (w, h) = (dec.width(), dec.height());
    let mut n = 0;
    while let Some(frame) = dec.read_next_frame().unwrap() {
        assert!(frame.left + frame.width <= w && frame.top + frame.height <= h);
        n += 1;
    }
    (n, w, h)
}

fn failure(args: &[&str]) -> String {
    let out = tame(args);
    assert!(!out.status.success(), "tame {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn es_cartpole_render_and_capture_video() {
    let root = scratch("cartpole");
    let logdir = root.join("runs");
    let run = train(&[
        "--agent", "es", "--env", "cartpole", "--steps", "60000", "--eval-every", "15000",
        "--eval-episodes", "3", "--capture-video", "--logdir", logdir.to_str().unwrap(),
    ]);
    let returns = final_eval_returns(&run);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("capture_video = true"), "{config}");
    // Capturing only watches: the same run without it learns the same bits.
    let plain = train(&[
        "--agent", "es", "--env", "cartpole", "--steps", "60000", "--eval-every", "15000",
        "--eval-episodes", "3", "--logdir", logdir.to_str().unwrap(),
    ]);
    assert_eq!(final_eval_returns(&plain), returns);
    assert!(!plain.join("videos").exists());

    // One GIF per evaluation, the last one the final evaluation's first episode.
    let mut videos: Vec<(u64, PathBuf)> = std::fs::read_dir(run.join("videos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().trim_start_matches("step").parse().unwrap(), p))
        .collect();
    videos.sort();
    let events = tame::tensorboard::read_events(&run).unwrap();
    let eval_steps: Vec<u64> = events.scalars["eval/mean_return"].iter().map(|p| p.step).collect();
    assert_eq!(videos.iter().map(|v| v.0).collect::<Vec<_>>(), eval_steps);
    assert!(eval_steps.len() >= 3, "{eval_steps:?}");
    // CartPole pays 1 per step, so the first episode's return is its length.
    let (frames, w, h) = decode_gif(&videos.last().unwrap().1);
    assert_eq!((frames, w, h), (returns[0] as usize + 1, 300, 200));

    // The Python tensorboard reader sees one image per evaluation, a 3x2 contact sheet.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make test` (or scripts/setup.sh)", python.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_tb_images.py");
    let out = Command::new(&python).arg(&script).arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let images: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = images["videos/eval"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["step"].as_u64().unwrap()).collect::<Vec<_>>(), eval_steps);
    for r in rows {
        let (w, h) = (3 * 300 + 2 * 4, 2 * 200 + 4);
        assert_eq!((r["width"].as_u64().unwrap(), r["height"].as_u64().unwrap()), (w, h));
        assert_eq!(r["decoded"], serde_json::json!([w, h]));
        assert_eq!(r["mode"], "RGB");
    }

    // tame render replays the run's evaluation episodes: same returns, one frame per state.
    let gif = root.join("two.gif");
    let out = tame(&["render", run.to_str().unwrap(), "--episodes", "2", "--out", gif.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for (i, r) in returns.iter().take(2).enumerate() {
        let line = format!("episode {} (seed {}): return {r:.2} over {r} steps", i + 1, 1_000_000 + i);
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
    assert_eq!(decode_gif(&gif), (returns[0] as usize + returns[1] as usize + 2, 300, 200));
    // --seed picks the episodes: seed 1000001 first is evaluation episode 1.
    let out = tame(&["render", run.to_str().unwrap(), "--seed", "1000001", "--out", gif.to_str().unwrap(), "--fps", "50"]);
    assert!(String::from_utf8(out.stdout).unwrap().contains(&format!("return {:.2}", returns[1])));

    // Bad input: each names the value, none panics.
    let r = run.to_str().unwrap();
    let e = failure(&["render", r, "--ansi"]);
    assert!(e.contains("--ansi") && e.contains("cartpole") && e.contains("frozenlake"), "{e}");
    let e = failure(&["render", r, "--episodes", "0"]);
    assert!(e.contains("--episodes 0") && e.contains(">= 1"), "{e}");
    let missing = root.join("no-such-dir").join("x.gif");
    let e = failure(&["render", r, "--out", missing.to_str().unwrap()]);
    assert!(e.contains(missing.to_str().unwrap()) && e.contains("does not exist"), "{e}");
    let e = failure(&["render", r, "--out", root.join("x.png").to_str().unwrap()]);
    assert!(e.contains("x.png") && e.contains(".gif"), "{e}");
    let e = failure(&["render", r, "--out", root.to_str().unwrap()]);
    assert!(e.contains("is a directory"), "{e}");
    let e = failure(&["render", r, "--fps", "0"]);
    assert!(e.contains("--fps 0") && e.contains("(0, 50]"), "{e}");
    // A run directory without a checkpoint (its config copied alone).
    let bare = root.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(run.join("config.toml"), bare.join("config.toml")).unwrap();
    let e = failure(&["render", bare.to_str().unwrap()]);
    assert!(e.contains(bare.to_str().unwrap()) && e.contains("no checkpoint"), "{e}");
    let e = failure(&["render", root.to_str().unwrap()]);
    assert!(e.contains("not a run directory"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn gridworld_runs_render_as_text_and_gif_for_es_and_sac() {
    let root = scratch("grid");
    let logdir = root.join("runs");
    let logdir = logdir.to_str().unwrap();
    let es = train(&["--agent", "es", "--env", "frozenlake-noslip", "--tau", "0.5", "--steps", "20000", "--eval-episodes", "2", "--logdir", logdir]);
    let sac = train(&["--agent", "sac", "--env", "frozenlake-noslip", "--tau", "0.1", "--steps", "300", "--eval-episodes", "2", "--capture-video", "--logdir", logdir]);
    // SAC's hook runs at every evaluation too, the final one (step 300) included.
    let events = tame::tensorboard::read_events(&sac).unwrap();
    let eval_steps: Vec<u64> = events.scalars["eval/mean_return"].iter().map(|p| p.step).collect();
    let videos = std::fs::read_dir(sac.join("videos")).unwrap().count();
    assert_eq!((videos, eval_steps.last()), (eval_steps.len(), Some(&300)));
    for run in [es, sac.clone()] {
        let r = run.to_str().unwrap();
        let (text, steps) = render_ansi(r);
        // One text frame per state, each with the agent's cell highlighted once.
        assert_eq!(text.matches("\x1b[41m").count(), steps + 1, "{text}");
        assert!(text.starts_with(&format!("{r}: ")), "{text}");
        let returns = final_eval_returns(&run);
        assert!(text.contains(&format!("return {:.2} over", returns[0])), "{text}");

        let gif = root.join("grid.gif");
        let out = tame(&["render", r, "--out", gif.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(decode_gif(&gif), (steps + 1, 128, 128));
        if run == sac {
            assert_eq!(decode_gif(&run.join("videos/step300.gif")), (steps + 1, 128, 128));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn es_pendulum_replay_equals_its_evaluation() {
    // Continuous actions go through the same squashing tanh as ES's batched evaluation.
    let root = scratch("pendulum");
    let run = train(&["--agent", "es", "--env", "pendulum", "--steps", "60000", "--eval-episodes", "2", "--logdir", root.to_str().unwrap()]);
    let returns = final_eval_returns(&run);
    let gif = root.join("p.gif");
    let out = tame(&["render", run.to_str().unwrap(), "--episodes", "2", "--out", gif.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for (i, r) in returns.iter().enumerate() {
        let line = format!("episode {} (seed {}): return {r:.2} over 200 steps", i + 1, 1_000_000 + i);
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
    assert_eq!(decode_gif(&gif), (2 * 201, 250, 250));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_resumed_run_keeps_capturing_video() {
    // `capture_video` lives in config.toml: `--resume` (here extending a finished run) records
    // the evaluations of the new session too, and the flag itself is refused beside --resume.
    let root = scratch("resume");
    let run = train(&[
        "--agent", "es", "--env", "cartpole", "--steps", "30000", "--eval-every", "10000",
        "--eval-episodes", "2", "--capture-video", "--logdir", root.to_str().unwrap(),
    ]);
    let r = run.to_str().unwrap();
    let e = failure(&["train", "--resume", r, "--capture-video"]);
    assert!(e.contains("--capture-video cannot be given with --resume"), "{e}");
    let first: Vec<u64> = tame::tensorboard::read_events(&run).unwrap().scalars["eval/mean_return"].iter().map(|p| p.step).collect();
    let out = tame(&["train", "--quiet", "--threads", "1", "--resume", r, "--steps", "80000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval_steps: Vec<u64> = tame::tensorboard::read_events(&run).unwrap().scalars["eval/mean_return"].iter().map(|p| p.step).collect();
    assert!(eval_steps.len() >= first.len() + 2 && eval_steps.starts_with(&first), "{first:?} then {eval_steps:?}");
    assert!(*eval_steps.last().unwrap() >= 80000, "{eval_steps:?}");
    let mut videos: Vec<u64> = std::fs::read_dir(run.join("videos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().trim_start_matches("step").trim_end_matches(".gif").parse().unwrap())
        .collect();
    videos.sort();
    assert_eq!(videos, eval_steps);
    // The new session's final GIF is its final evaluation's first episode (CartPole pays 1 per step).
    let returns = final_eval_returns(&run);
    let last = run.join(format!("videos/step{}.gif", eval_steps.last().unwrap()));
    assert_eq!(decode_gif(&last), (returns[0] as usize + 1, 300, 200));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn taxi_runs_render_as_gymnasiums_text_and_as_a_gif() {
    let root = scratch("taxi");
    let logdir = root.join("runs");
    let run = train(&["--agent", "es", "--env", "taxi", "--steps", "20000", "--eval-episodes", "1", "--logdir", logdir.to_str().unwrap()]);
    let r = run.to_str().unwrap();
    let (text, steps) = render_ansi(r);
    // One map per state, each with its frame; the taxi is highlighted in every one (yellow
    // when empty, green with the passenger).
    assert_eq!(text.matches("+---------+\n|").count(), steps + 1, "{text}");
    assert_eq!(text.matches("\x1b[43m").count() + text.matches("\x1b[42m").count(), steps + 1, "{text}");
    assert!(text.contains(&format!("return {:.2} over", final_eval_returns(&run)[0])), "{text}");
    let gif = root.join("taxi.gif");
    let out = tame(&["render", r, "--out", gif.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(decode_gif(&gif), (steps + 1, 160, 160));
    let _ = std::fs::remove_dir_all(&root);
}
