//! `tame render RUN_DIR`: reloads a run's latest checkpoint and plays deterministic
//! evaluation episodes with rendering, into an animated GIF or, for gridworlds with
//! `--ansi`, as text in the terminal.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use tame_agents::eval::EVAL_SEED_BASE;

use crate::agent::load_policy;
use crate::video::{default_fps, play, GifStream, Shown, View, MAX_FPS, MAX_PLAY_STEPS};

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A run directory written by `tame train` (holds config.toml and checkpoints/).
    run_dir: PathBuf,
    /// Episodes to play, one after the other.
    #[arg(long, default_value_t = 1)]
    episodes: usize,
    /// Seed of the first episode; episode i uses seed + i [default: 1000000, the first
    /// evaluation episode's].
    #[arg(long)]
    seed: Option<u64>,
    /// The GIF to write [default: RUN_DIR/render.gif].
    #[arg(long, conflicts_with = "ansi")]
    out: Option<PathBuf>,
    /// Gridworlds and Taxi: play the episodes as text in the terminal (Gymnasium's `ansi`
    /// mode) instead of writing a GIF.
    #[arg(long)]
    ansi: bool,
    /// Frames per second, at most 50 [default: 4 for gridworlds, 30 for classic control].
    #[arg(long)]
    fps: Option<f64>,
}

pub fn run(args: RenderArgs) -> anyhow::Result<()> {
    if args.episodes == 0 {
        bail!("--episodes 0 is out of range; accepted: >= 1");
    }
    if let Some(fps) = args.fps.filter(|f| !(*f > 0.0 && *f <= MAX_FPS)) {
        bail!("--fps {fps} is out of range; accepted: a number in (0, {MAX_FPS}] (GIF delays are hundredths of a second)");
    }
    let out = args.out.clone().unwrap_or_else(|| args.run_dir.join("render.gif"));
    if !args.ansi {
        check_writable(&out)?;
    }
    let mut loaded = load_policy(&args.run_dir)?;
    let cfg = &loaded.config;
    tch::set_num_threads(cfg.threads as i32);
    let mut env = crate::run_dir::make_env(&cfg.env)?;
    if args.ansi && env.render_ansi(&Default::default()).is_none() {
        bail!(
            "--ansi needs an env with a text mode, but run {} is on env '{}', which has none; \
             text mode: frozenlake, frozenlake8x8, cliffwalking, map:PATH, taxi (and their options); \
             leave out --ansi to write a GIF",
            args.run_dir.display(),
            cfg.env
        );
    }
    let fps = args.fps.unwrap_or_else(|| default_fps(env.as_ref()));
    let first_seed = args.seed.unwrap_or(EVAL_SEED_BASE);
    let view = if args.ansi { View::Ansi } else { View::Rgb };
    println!(
        "{}: {} on {}, tau {}, checkpoint at step {}",
        args.run_dir.display(), cfg.agent.name(), cfg.env, cfg.tau, loaded.step
    );
    let mut gif: Option<GifStream<Vec<u8>>> = None;
    let mut size = (0, 0);
    for i in 0..args.episodes {
        let seed = first_seed.checked_add(i as u64).with_context(|| format!("--seed {first_seed} + {i} overflows"))?;
        let mut texts = Vec::new();
        let played = play(env.as_mut(), loaded.policy.as_mut(), seed, view, &mut |shown| match shown {
            Shown::Text(t) => {
                texts.push(t.to_string());
                Ok(())
            }
            Shown::Frame(f) => {
                size = (f.width, f.height);
                let g = match &mut gif {
                    Some(g) => g,
                    None => gif.insert(GifStream::new(Vec::new(), f.width, f.height, fps)?),
                };
                g.push(f)
            }
        })?;
        if args.ansi {
            show_text(&texts, fps)?;
        }
        let success = match played.success {
            Some(s) => format!(", {}", if s { "goal reached" } else { "goal not reached" }),
            None => String::new(),
        };
        let cut = if played.cut_short { format!(" (stopped at {MAX_PLAY_STEPS} steps: the env has no time limit)") } else { String::new() };
        println!("episode {} (seed {seed}): return {:.2} over {} steps{success}{cut}", i + 1, played.episode_return, played.steps);
    }
    if let Some(gif) = gif {
        let frames = gif.frames();
        let bytes = gif.finish()?;
        crate::fsutil::write_atomic(&out, &bytes).with_context(|| format!("--out {}: cannot write the GIF", out.display()))?;
        println!(
            "wrote {} ({frames} frames of {}x{} at {fps} fps, {} KB)",
            out.display(), size.0, size.1, bytes.len().div_ceil(1024)
        );
    }
    Ok(())
}

/// Fails early, before an episode is played, when `out` cannot be written.
fn check_writable(out: &std::path::Path) -> anyhow::Result<()> {
    if out.is_dir() {
        bail!("--out {} is a directory; accepted: a .gif file path", out.display());
    }
    if out.extension().and_then(|e| e.to_str()).is_none_or(|e| !e.eq_ignore_ascii_case("gif")) {
        bail!("--out {}: accepted: a file name ending in .gif", out.display());
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        bail!("--out {}: directory {} does not exist", out.display(), dir.display());
    }
    // Probe with a temporary file: permissions alone do not tell (read-only mounts, ACLs).
    let probe = dir.join(format!(".tame-render-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| anyhow::anyhow!("--out {}: cannot write in {}: {e}", out.display(), dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Prints each text frame; in a terminal, redraws in place at `fps`.
fn show_text(texts: &[String], fps: f64) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let live = stdout.is_terminal();
    for text in texts {
        if live {
            write!(stdout, "\x1b[H\x1b[2J")?;
        }
        write!(stdout, "{text}")?;
        if !live {
            writeln!(stdout)?;
        }
        stdout.flush()?;
        if live {
            std::thread::sleep(std::time::Duration::from_secs_f64(1.0 / fps));
        }
    }
    Ok(())
}
