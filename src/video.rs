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

/// What a played episode gives besides its pictures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Played {
    pub episode_return: f64,
    pub steps: u64,
    pub success: Option<bool>,
    /// The episode was stopped at [`MAX_PLAY_STEPS`] (an env without a time limit).
    pub cut_short: bool,
}

/// Steps after which an episode is stopped when playing: every built-in time limit is
/// shorter (MountainCar's 999 is the longest), envs without one (CliffWalking) are cut here.
pub const MAX_PLAY_STEPS: u64 = 1000;

/// RGB frames for a GIF, or the gridworld text mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Rgb,
    Ansi,
}

/// One picture of a state, in the chosen [`View`].
pub enum Shown<'a> {
    Frame(&'a Frame),
    Text(&'a str),
}

/// Plays one deterministic episode of `policy` on `env` from `seed` and hands every state's
/// picture to `show`: the start state's and one after each step, so `steps + 1` of them.
pub fn play(
    env: &mut dyn Env,
    policy: &mut dyn Policy,
    seed: u64,
    view: View,
    show: &mut dyn FnMut(Shown<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<Played> {
    let mut obs = vec![0.0f32; env.observation_space().dim()];
    env.reset(Some(seed), &mut obs);
    let mut trail = Trail::default();
    trail.reset(env);
    let mut draw = |env: &dyn Env, trail: &Trail| -> anyhow::Result<()> {
        match view {
            View::Rgb => show(Shown::Frame(&env.render_rgb(&trail.ctx()).context("this env cannot draw frames")?)),
            View::Ansi => show(Shown::Text(&env.render_ansi(&trail.ctx()).context("this env has no text mode")?)),
        }
    };
    draw(env, &trail)?;
    let mut out = Played::default();
    loop {
        let action = policy.act(&obs);
        let step = env.step(action.as_action(), &mut obs)?;
        trail.record(env, action.as_action());
        out.episode_return += step.reward;
        out.steps += 1;
        draw(env, &trail)?;
        if step.terminated || step.truncated || out.steps >= MAX_PLAY_STEPS {
            out.success = env.success();
            out.cut_short = !(step.terminated || step.truncated);
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

/// An endlessly looping animated GIF written frame by frame, so that an episode is never
/// held in memory whole. Frames after the first store only the rectangle that changed, each
/// with its own palette (exact when the rectangle has at most 256 colours, as tame's
/// drawings do); the last frame stays up for a second so the episode's end can be seen.
pub struct GifStream<W: std::io::Write> {
    enc: gif::Encoder<W>,
    size: (usize, usize),
    delay: u16,
    prev: Option<Frame>,
    /// Written once the next frame arrives (or at `finish`, with the longer delay).
    pending: Option<gif::Frame<'static>>,
    frames: usize,
}

impl<W: std::io::Write> GifStream<W> {
    pub fn new(out: W, width: usize, height: usize, fps: f64) -> anyhow::Result<Self> {
        if !(fps > 0.0 && fps <= MAX_FPS) {
            bail!("fps {fps} is out of range; accepted: (0, {MAX_FPS}] (GIF delays are hundredths of a second)");
        }
        let mut enc = gif::Encoder::new(out, gif_size(width)?, gif_size(height)?, &[]).context("encoding GIF")?;
        enc.set_repeat(gif::Repeat::Infinite).context("encoding GIF")?;
        let delay = (100.0 / fps).round().max(2.0) as u16;
        Ok(GifStream { enc, size: (width, height), delay, prev: None, pending: None, frames: 0 })
    }

    pub fn push(&mut self, frame: &Frame) -> anyhow::Result<()> {
        let (w, h) = self.size;
        if (frame.width, frame.height) != (w, h) {
            bail!("frames differ in size: {w}x{h} and {}x{}", frame.width, frame.height);
        }
        let (x0, y0, x1, y1) = match &self.prev {
            None => (0, 0, w, h),
            Some(prev) => changed_box(prev, frame).unwrap_or((0, 0, 1, 1)),
        };
        let mut rgb = Vec::with_capacity((x1 - x0) * (y1 - y0) * 3);
        for y in y0..y1 {
            rgb.extend_from_slice(&frame.rgb[3 * (y * w + x0)..3 * (y * w + x1)]);
        }
        let (fw, fh) = (gif_size(x1 - x0)?, gif_size(y1 - y0)?);
        let mut out = match exact_palette(&rgb) {
            Some((palette, indices)) => gif::Frame { width: fw, height: fh, buffer: Cow::Owned(indices), palette: Some(palette), ..gif::Frame::default() },
            None => gif::Frame::from_rgb_speed(fw, fh, &rgb, 10),
        };
        out.left = gif_size(x0)?;
        out.top = gif_size(y0)?;
        out.dispose = gif::DisposalMethod::Keep;
        out.delay = self.delay;
        if let Some(done) = self.pending.replace(out) {
            self.enc.write_frame(&done).context("encoding GIF")?;
        }
        match &mut self.prev {
            Some(prev) => prev.rgb.copy_from_slice(&frame.rgb),
            None => self.prev = Some(frame.clone()),
        }
        self.frames += 1;
        Ok(())
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Writes the last frame and the trailer; returns the writer.
    pub fn finish(mut self) -> anyhow::Result<W> {
        let mut last = self.pending.take().context("no frames to encode")?;
        last.delay = last.delay.max(100);
        self.enc.write_frame(&last).context("encoding GIF")?;
        self.enc.into_inner().context("encoding GIF")
    }
}

fn gif_size(n: usize) -> anyhow::Result<u16> {
    u16::try_from(n).with_context(|| format!("a GIF is at most 65535 pixels wide and high; this frame is {n}"))
}

/// A GIF of `frames` at `fps` (see [`GifStream`]).
pub fn encode_gif(frames: &[Frame], fps: f64) -> anyhow::Result<Vec<u8>> {
    let first = frames.first().context("no frames to encode")?;
    let mut gif = GifStream::new(Vec::new(), first.width, first.height, fps)?;
    for f in frames {
        gif.push(f)?;
    }
    gif.finish()
}

/// The palette of an RGB buffer and each pixel's index in it, if it has at most 256 colours.
fn exact_palette(rgb: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut index: HashMap<Rgb, u8> = HashMap::new();
    let mut palette = Vec::new();
    let mut indices = Vec::with_capacity(rgb.len() / 3);
    let mut last: Option<(Rgb, u8)> = None;
    for p in rgb.chunks_exact(3) {
        let c = [p[0], p[1], p[2]];
        let i = match last {
            Some((lc, li)) if lc == c => li, // runs of one colour are the common case
            _ => match index.get(&c) {
                Some(&i) => i,
                None if index.len() == 256 => return None,
                None => {
                    let i = index.len() as u8;
                    index.insert(c, i);
                    palette.extend_from_slice(&c);
                    i
                }
            },
        };
        last = Some((c, i));
        indices.push(i);
    }
    Some((palette, indices))
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

/// Indices of up to `k` of `n` frames, evenly spaced, first and last included.
pub fn sheet_indices(n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n).max(1);
    if k == 1 {
        return vec![n.saturating_sub(1)];
    }
    (0..k).map(|i| i * (n - 1) / (k - 1)).collect()
}

/// `frames` tiled `columns` to a row with 4 white pixels between them.
pub fn contact_sheet(frames: &[Frame], columns: usize) -> anyhow::Result<Frame> {
    let first = frames.first().context("no frames to tile")?;
    let k = frames.len();
    let cols = columns.clamp(1, k);
    let rows = k.div_ceil(cols);
    const GAP: usize = 4;
    let (w, h) = (first.width, first.height);
    let mut sheet = Frame::new(cols * w + (cols - 1) * GAP, rows * h + (rows - 1) * GAP, [255, 255, 255]);
    for (i, f) in frames.iter().enumerate() {
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
        let seed = tame_agents::eval::EVAL_SEED_BASE;
        let mut gif: Option<GifStream<Vec<u8>>> = None;
        let played = play(self.env.as_mut(), policy, seed, View::Rgb, &mut |shown| {
            let Shown::Frame(f) = shown else { return Ok(()) };
            let g = match &mut gif {
                Some(g) => g,
                None => gif.insert(GifStream::new(Vec::new(), f.width, f.height, self.fps)?),
            };
            g.push(f)
        })?;
        let path = self.dir.join(format!("step{step}.gif"));
        let bytes = gif.context("the episode drew no frames")?.finish()?;
        crate::fsutil::write_atomic(&path, &bytes)?;
        // The episode is deterministic: play it again for the frames of the contact sheet.
        let n = played.steps as usize + 1;
        let picks = sheet_indices(n, SHEET_FRAMES);
        let (mut i, mut frames) = (0, Vec::new());
        play(self.env.as_mut(), policy, seed, View::Rgb, &mut |shown| {
            if let Shown::Frame(f) = shown {
                if picks.contains(&i) {
                    frames.push(f.clone());
                }
                i += 1;
            }
            Ok(())
        })?;
        let sheet = contact_sheet(&frames, SHEET_COLUMNS)?;
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
    // Drawing alone (each frame dropped), then encoding alone (drawing untimed), the way
    // `tame render` streams them.
    let mut rgb_secs = 0.0;
    let mut gif_secs = 0.0;
    let mut gif: Option<GifStream<Vec<u8>>> = None;
    let (mut width, mut height) = (0, 0);
    for (s, a) in states.iter().zip(&actions) {
        env.set_state(s, &mut obs)?;
        let action = if discrete { Action::Discrete(a[0] as usize) } else { Action::Continuous(a) };
        let ctx = RenderCtx { last_action: Some(action), path: &[] };
        let t = Instant::now();
        let frame = env.render_rgb(&ctx).with_context(|| format!("env {env_name} cannot draw"))?;
        rgb_secs += t.elapsed().as_secs_f64();
        (width, height) = (frame.width, frame.height);
        let t = Instant::now();
        let g = match &mut gif {
            Some(g) => g,
            None => gif.insert(GifStream::new(Vec::new(), frame.width, frame.height, default_fps(env.as_ref()))?),
        };
        g.push(&frame)?;
        gif_secs += t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    let gif_bytes = gif.context("no frames")?.finish()?.len();
    gif_secs += t.elapsed().as_secs_f64();
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
    let per = |secs: f64| secs * 1e6 / frames as f64;
    Ok(RenderCost {
        env: env_name.to_string(),
        width,
        height,
        frames,
        step_us: per(step_secs),
        rgb_us: per(rgb_secs),
        ansi_us: ansi_secs.map(per),
        gif_us: per(gif_secs),
        gif_bytes_per_frame: gif_bytes as f64 / frames as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tame_agents::eval::PolicyAction;

    /// Always the same action.
    struct Constant(PolicyAction);
    impl Policy for Constant {
        fn act(&mut self, _obs: &[f32]) -> PolicyAction {
            self.0.clone()
        }
        fn action_probs(&mut self, _obs: &[f32]) -> Option<Vec<f64>> {
            None
        }
    }

    /// Every frame of a GIF composited as a viewer shows it (each sub-rectangle kept).
    fn decode(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(bytes).unwrap();
        let w = dec.width() as usize;
        let mut canvas = vec![0u8; w * dec.height() as usize * 3];
        let mut out = Vec::new();
        while let Some(f) = dec.read_next_frame().unwrap() {
            for y in 0..f.height as usize {
                for x in 0..f.width as usize {
                    let src = 4 * (y * f.width as usize + x);
                    let dst = 3 * ((f.top as usize + y) * w + f.left as usize + x);
                    canvas[dst..dst + 3].copy_from_slice(&f.buffer[src..src + 3]);
                }
            }
            out.push(canvas.clone());
        }
        out
    }

    #[test]
    fn gif_frames_decode_to_the_frames_drawn() {
        let mut env = tame_envs::make("pendulum").unwrap();
        let mut frames = Vec::new();
        let mut policy = Constant(PolicyAction::Continuous(vec![1.5]));
        let played = play(env.as_mut(), &mut policy, 3, View::Rgb, &mut |s| {
            if let Shown::Frame(f) = s {
                frames.push(f.clone());
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(frames.len() as u64, played.steps + 1);
        let decoded = decode(&encode_gif(&frames, 30.0).unwrap());
        assert_eq!(decoded.len(), frames.len());
        for (i, (d, f)) in decoded.iter().zip(&frames).enumerate() {
            assert!(d == &f.rgb, "frame {i} differs after encoding");
        }
        assert!(encode_gif(&frames, 0.0).is_err() && encode_gif(&frames, 51.0).is_err());
    }

    #[test]
    fn episodes_without_a_time_limit_stop_at_max_play_steps() {
        // CliffWalking has no time limit; always UP (0) from the start never ends.
        let mut env = tame_envs::make("cliffwalking").unwrap();
        let mut texts = 0;
        let played = play(env.as_mut(), &mut Constant(PolicyAction::Discrete(0)), 0, View::Ansi, &mut |s| {
            assert!(matches!(s, Shown::Text(_)));
            texts += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((played.steps, played.cut_short, texts), (MAX_PLAY_STEPS, true, MAX_PLAY_STEPS + 1));
        assert_eq!(played.episode_return, -(MAX_PLAY_STEPS as f64));
    }

    #[test]
    fn contact_sheet_tiles_evenly_spaced_frames() {
        assert_eq!(sheet_indices(11, 6), vec![0, 2, 4, 6, 8, 10]);
        assert_eq!(sheet_indices(3, 6), vec![0, 1, 2]);
        assert_eq!(sheet_indices(1, 6), vec![0]);
        let frames: Vec<Frame> = (0..5u8).map(|i| Frame::new(10, 8, [i, i, i])).collect();
        let sheet = contact_sheet(&frames, 3).unwrap();
        assert_eq!((sheet.width, sheet.height), (3 * 10 + 2 * 4, 2 * 8 + 4));
        assert_eq!(sheet.pixel(14, 0), Some([1, 1, 1]));
        assert_eq!(sheet.pixel(10, 0), Some([255, 255, 255]), "the gap");
        assert_eq!(sheet.pixel(15, 12), Some([4, 4, 4]), "second row, second column");
    }
}
