//! Watching a policy act: deterministic episodes played with rendering, encoded as animated
//! GIFs (`tame render`, `tame train --capture-video`) and as a PNG contact sheet for
//! TensorBoard's Images tab.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tame_agents::policy::Policy;
use tame_envs::render::Rgb;
use tame_envs::{Env, Frame, Space, Trail};

/// What a played episode gives: one picture (or text) of the start state and one after each
/// step, so `steps + 1` of them.
#[derive(Debug, Default)]
pub struct Played {
    pub frames: Vec<Frame>,
    pub texts: Vec<String>,
    pub episode_return: f64,
    pub steps: u64,
    pub success: Option<bool>,
}

/// RGB frames for a GIF, or the gridworld text mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Rgb,
    Ansi,
}

/// Plays one deterministic episode of `policy` on `env` from `seed`, drawing every state.
pub fn play(env: &mut dyn Env, policy: &mut dyn Policy, seed: u64, view: View) -> anyhow::Result<Played> {
    let mut obs = vec![0.0f32; env.observation_space().dim()];
    env.reset(Some(seed), &mut obs);
    let mut trail = Trail::default();
    trail.reset(env);
    let mut out = Played::default();
    let draw = |env: &dyn Env, trail: &Trail, out: &mut Played| -> anyhow::Result<()> {
        match view {
            View::Rgb => out.frames.push(env.render_rgb(&trail.ctx()).context("this env cannot draw frames")?),
            View::Ansi => out.texts.push(env.render_ansi(&trail.ctx()).context("this env has no text mode")?),
        }
        Ok(())
    };
    draw(env, &trail, &mut out)?;
    loop {
        let action = policy.act(&obs);
        let step = env.step(action.as_action(), &mut obs)?;
        trail.record(env, action.as_action());
        out.episode_return += step.reward;
        out.steps += 1;
        draw(env, &trail, &mut out)?;
        if step.terminated || step.truncated {
            out.success = env.success();
            return Ok(out);
        }
    }
}

/// Frames per second shown by default: Gymnasium's `render_fps` (4 for the toy-text
/// gridworlds, 30 for classic control, CartPole's 50 rounded down to 30 to keep GIFs small).
pub fn default_fps(env: &dyn Env) -> f64 {
    match env.observation_space() {
        Space::Discrete(_) => 4.0,
        Space::Box { .. } => 30.0,
    }
}

/// The fastest rate a GIF can show: its delays count hundredths of a second, and players
/// slow down anything under 2.
pub const MAX_FPS: f64 = 50.0;

/// An endlessly looping GIF of `frames` (all the same size) at `fps`; the last frame stays
/// up for a second so the episode's end can be seen. Frames after the first store only the
/// rectangle that changed; colours are exact when the episode uses at most 256 of them.
pub fn encode_gif(frames: &[Frame], fps: f64) -> anyhow::Result<Vec<u8>> {
    let first = frames.first().context("no frames to encode")?;
    if !(fps > 0.0 && fps <= MAX_FPS) {
        bail!("fps {fps} is out of range; accepted: (0, {MAX_FPS}] (GIF delays are hundredths of a second)");
    }
    let (w, h) = (first.width, first.height);
    if let Some(f) = frames.iter().find(|f| (f.width, f.height) != (w, h)) {
        bail!("frames differ in size: {}x{} and {}x{}", w, h, f.width, f.height);
    }
    let size = |n: usize| u16::try_from(n).with_context(|| format!("a GIF is at most 65535 pixels wide; this frame is {n}"));
    let (gw, gh) = (size(w)?, size(h)?);
    let delay = (100.0 / fps).round().max(2.0) as u16;
    let palette = exact_palette(frames);
    let mut bytes = Vec::new();
    {
        let global: &[u8] = palette.as_ref().map_or(&[], |(flat, _)| flat.as_slice());
        let mut enc = gif::Encoder::new(&mut bytes, gw, gh, global).context("encoding GIF")?;
        enc.set_repeat(gif::Repeat::Infinite).context("encoding GIF")?;
        for (i, frame) in frames.iter().enumerate() {
            let (x0, y0, x1, y1) = match i {
                0 => (0, 0, w, h),
                _ => changed_box(&frames[i - 1], frame).unwrap_or((0, 0, 1, 1)),
            };
            let mut rgb = Vec::with_capacity((x1 - x0) * (y1 - y0) * 3);
            for y in y0..y1 {
                rgb.extend_from_slice(&frame.rgb[3 * (y * w + x0)..3 * (y * w + x1)]);
            }
            let (fw, fh) = (size(x1 - x0)?, size(y1 - y0)?);
            let mut out = match &palette {
                Some((_, index)) => gif::Frame {
                    width: fw,
                    height: fh,
                    buffer: Cow::Owned(rgb.chunks(3).map(|p| index[&[p[0], p[1], p[2]]]).collect()),
                    ..gif::Frame::default()
                },
                None => gif::Frame::from_rgb_speed(fw, fh, &rgb, 10),
            };
            out.left = size(x0)?;
            out.top = size(y0)?;
            out.dispose = gif::DisposalMethod::Keep;
            out.delay = if i + 1 == frames.len() { delay.max(100) } else { delay };
            enc.write_frame(&out).context("encoding GIF")?;
        }
    }
    Ok(bytes)
}

/// The colours of every frame as a GIF palette (and each colour's index), if at most 256.
fn exact_palette(frames: &[Frame]) -> Option<(Vec<u8>, HashMap<Rgb, u8>)> {
    let mut index: HashMap<Rgb, u8> = HashMap::new();
    let mut flat = Vec::new();
    let mut last: Option<Rgb> = None;
    for p in frames.iter().flat_map(|f| f.rgb.chunks_exact(3)) {
        let c = [p[0], p[1], p[2]];
        if last == Some(c) {
            continue; // runs of one colour are the common case
        }
        last = Some(c);
        if !index.contains_key(&c) {
            if index.len() == 256 {
                return None;
            }
            index.insert(c, index.len() as u8);
            flat.extend_from_slice(&c);
        }
    }
    Some((flat, index))
}

/// The smallest rectangle `(x0, y0, x1, y1)` (end exclusive) outside which `a` and `b` agree.
fn changed_box(a: &Frame, b: &Frame) -> Option<(usize, usize, usize, usize)> {
    let w = a.width;
    let mut bbox: Option<(usize, usize, usize, usize)> = None;
    for y in 0..a.height {
        let (ra, rb) = (&a.rgb[3 * y * w..3 * (y + 1) * w], &b.rgb[3 * y * w..3 * (y + 1) * w]);
        if ra == rb {
            continue;
        }
        let px = |x: usize| ra[3 * x..3 * x + 3] != rb[3 * x..3 * x + 3];
        let lo = (0..w).find(|&x| px(x)).unwrap_or(0);
        let hi = (0..w).rev().find(|&x| px(x)).unwrap_or(w - 1) + 1;
        bbox = Some(match bbox {
            None => (lo, y, hi, y + 1),
            Some((x0, y0, x1, _)) => (x0.min(lo), y0, x1.max(hi), y + 1),
        });
    }
    bbox
}

/// Up to `n` frames evenly spaced over the episode (first and last included), tiled
/// `columns` to a row with 4 white pixels between them.
pub fn contact_sheet(frames: &[Frame], n: usize, columns: usize) -> anyhow::Result<Frame> {
    let first = frames.first().context("no frames to tile")?;
    let k = n.min(frames.len()).max(1);
    let picks: Vec<&Frame> = (0..k)
        .map(|i| if k == 1 { frames.len() - 1 } else { i * (frames.len() - 1) / (k - 1) })
        .map(|i| &frames[i])
        .collect();
    let cols = columns.clamp(1, k);
    let rows = k.div_ceil(cols);
    const GAP: usize = 4;
    let (w, h) = (first.width, first.height);
    let mut sheet = Frame::new(cols * w + (cols - 1) * GAP, rows * h + (rows - 1) * GAP, [255, 255, 255]);
    for (i, f) in picks.iter().enumerate() {
        let (ox, oy) = ((i % cols) * (w + GAP), (i / cols) * (h + GAP));
        for y in 0..h {
            let dst = 3 * ((oy + y) * sheet.width + ox);
            sheet.rgb[dst..dst + 3 * w].copy_from_slice(&f.rgb[3 * y * w..3 * (y + 1) * w]);
        }
    }
    Ok(sheet)
}

/// PNG bytes of a frame.
pub fn frame_png(frame: &Frame) -> anyhow::Result<Vec<u8>> {
    crate::plot::encode_png(frame.width as u32, frame.height as u32, &frame.rgb)
}

/// `tame train --capture-video`: at each evaluation, plays the first evaluation episode
/// (seed `EVAL_SEED_BASE`, deterministic) with rendering, writes it as
/// `videos/step<N>.gif` and logs a contact sheet of it as the TensorBoard image `videos/eval`.
pub struct VideoCapture {
    env: Box<dyn Env>,
    dir: PathBuf,
    fps: f64,
}

/// Frames on the TensorBoard contact sheet, and per row.
pub const SHEET_FRAMES: usize = 6;
pub const SHEET_COLUMNS: usize = 3;

impl VideoCapture {
    /// Records into `run_dir/videos/`, playing on a fresh env called `env_name`.
    pub fn new(run_dir: &Path, env_name: &str) -> anyhow::Result<VideoCapture> {
        let env = tame_envs::make(env_name)?;
        let fps = default_fps(env.as_ref());
        let dir = run_dir.join("videos");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(VideoCapture { env, dir, fps })
    }

    pub fn capture(&mut self, step: u64, policy: &mut dyn Policy, writer: &mut crate::tensorboard::EventWriter) -> anyhow::Result<()> {
        let played = play(self.env.as_mut(), policy, tame_agents::eval::EVAL_SEED_BASE, View::Rgb)?;
        let path = self.dir.join(format!("step{step}.gif"));
        crate::fsutil::write_atomic(&path, &encode_gif(&played.frames, self.fps)?)?;
        let sheet = contact_sheet(&played.frames, SHEET_FRAMES, SHEET_COLUMNS)?;
        writer.add_image("videos/eval", step, sheet.width, sheet.height, frame_png(&sheet)?)
    }
}

/// What one frame costs on one env, in microseconds (`tame bench render`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RenderCost {
    pub env: String,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    /// `step` alone, for scale (stepping never renders).
    pub step_us: f64,
    pub rgb_us: f64,
    pub ansi_us: Option<f64>,
    /// GIF encoding per frame (palette, changed rectangle, LZW).
    pub gif_us: f64,
    pub gif_bytes_per_frame: f64,
}

/// Steps `env_name` with seeded random actions for `frames` steps (resetting at episode
/// ends), then times drawing each visited state, its text, and encoding the frames as a GIF.
pub fn bench_render(env_name: &str, frames: usize, seed: u64) -> anyhow::Result<RenderCost> {
    use rand::{Rng, SeedableRng};
    use std::time::Instant;
    use tame_envs::{Action, RenderCtx};
    let mut env = tame_envs::make(env_name)?;
    let mut obs = vec![0.0f32; env.observation_space().dim()];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let space = env.action_space();
    let mut states = Vec::with_capacity(frames);
    let mut actions = Vec::with_capacity(frames);
    env.reset(Some(seed), &mut obs);
    let mut step_secs = 0.0;
    for _ in 0..frames {
        let a: Vec<f64> = match &space {
            Space::Discrete(n) => vec![rng.random_range(0..*n) as f64],
            Space::Box { low, high } => low.iter().zip(high).map(|(l, h)| rng.random_range(*l as f64..=*h as f64)).collect(),
        };
        let t = Instant::now();
        let r = match &space {
            Space::Discrete(_) => env.step(Action::Discrete(a[0] as usize), &mut obs)?,
            Space::Box { .. } => env.step(Action::Continuous(&a), &mut obs)?,
        };
        step_secs += t.elapsed().as_secs_f64();
        states.push(env.state());
        actions.push(a);
        if r.terminated || r.truncated {
            env.reset(None, &mut obs);
        }
    }
    let discrete = matches!(space, Space::Discrete(_));
    let mut drawn = Vec::with_capacity(frames);
    let t = Instant::now();
    for (s, a) in states.iter().zip(&actions) {
        env.set_state(s, &mut obs)?;
        let action = if discrete { Action::Discrete(a[0] as usize) } else { Action::Continuous(a) };
        let ctx = RenderCtx { last_action: Some(action), path: &[] };
        drawn.push(env.render_rgb(&ctx).with_context(|| format!("env {env_name} cannot draw"))?);
    }
    let rgb_secs = t.elapsed().as_secs_f64();
    let ansi_secs = if env.render_ansi(&RenderCtx::default()).is_some() {
        let t = Instant::now();
        let mut chars = 0;
        for (s, a) in states.iter().zip(&actions) {
            env.set_state(s, &mut obs)?;
            let ctx = RenderCtx { last_action: Some(Action::Discrete(a[0] as usize)), path: &[] };
            chars += env.render_ansi(&ctx).map_or(0, |t| t.len());
        }
        std::hint::black_box(chars);
        Some(t.elapsed().as_secs_f64())
    } else {
        None
    };
    let t = Instant::now();
    let gif = encode_gif(&drawn, default_fps(env.as_ref()))?;
    let gif_secs = t.elapsed().as_secs_f64();
    let per = |secs: f64| secs * 1e6 / frames as f64;
    Ok(RenderCost {
        env: env_name.to_string(),
        width: drawn[0].width,
        height: drawn[0].height,
        frames,
        step_us: per(step_secs),
        rgb_us: per(rgb_secs),
        ansi_us: ansi_secs.map(per),
        gif_us: per(gif_secs),
        gif_bytes_per_frame: gif.len() as f64 / frames as f64,
    })
}
