//! Pictures of env states: RGB frames for every built-in env (Gymnasium's `rgb_array` in
//! spirit, not a pixel copy) and a text mode for gridworlds (Gymnasium's `ansi`).
//!
//! Rendering is a separate path: `Env::render_rgb` / `Env::render_ansi` read the state and
//! draw, and nothing in `step` records anything for them. What a picture shows besides the
//! state (the last action, a gridworld's path so far) comes from the caller in a
//! [`RenderCtx`]; [`Trail`] keeps it for a played episode.

use crate::{Action, Env, Space};

/// An RGB image, row-major, 3 bytes per pixel, (0, 0) at the top left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// A colour as `[r, g, b]`.
pub type Rgb = [u8; 3];

impl Frame {
    /// A frame filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Frame {
        Frame { width, height, rgb: background.repeat(width * height) }
    }

    /// The colour at `(x, y)`; `None` outside the frame.
    pub fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = 3 * (y * self.width + x);
            [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
        })
    }

    fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 3 * (y as usize * self.width + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills the pixels whose centres satisfy `inside` within the box `[x0, x1] × [y0, y1]`.
    fn fill_where(&mut self, (x0, y0, x1, y1): (f64, f64, f64, f64), c: Rgb, inside: impl Fn(f64, f64) -> bool) {
        let (w, h) = (self.width as f64, self.height as f64);
        let clamp_x = |v: f64| v.clamp(0.0, w) as i64;
        let clamp_y = |v: f64| v.clamp(0.0, h) as i64;
        for y in clamp_y(y0.floor())..clamp_y(y1.ceil() + 1.0) {
            for x in clamp_x(x0.floor())..clamp_x(x1.ceil() + 1.0) {
                if inside(x as f64 + 0.5, y as f64 + 0.5) {
                    self.put(x, y, c);
                }
            }
        }
    }

    /// An axis-aligned rectangle, corners in pixels.
    pub fn fill_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb) {
        self.fill_where((x0, y0, x1, y1), c, |x, y| x >= x0 && x < x1 && y >= y0 && y < y1);
    }

    pub fn fill_circle(&mut self, cx: f64, cy: f64, r: f64, c: Rgb) {
        self.fill_where((cx - r, cy - r, cx + r, cy + r), c, |x, y| (x - cx).powi(2) + (y - cy).powi(2) <= r * r);
    }

    /// A segment of the given width with round ends (a capsule).
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), width: f64, c: Rgb) {
        let h = width / 2.0;
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = (dx * dx + dy * dy).max(1e-12);
        let bbox = (x0.min(x1) - h, y0.min(y1) - h, x0.max(x1) + h, y0.max(y1) + h);
        self.fill_where(bbox, c, |x, y| {
            let t = (((x - x0) * dx + (y - y0) * dy) / len2).clamp(0.0, 1.0);
            (x - x0 - t * dx).powi(2) + (y - y0 - t * dy).powi(2) <= h * h
        });
    }

    /// A convex polygon (vertices in either winding order).
    pub fn fill_convex(&mut self, pts: &[(f64, f64)], c: Rgb) {
        let bbox = pts.iter().fold((f64::MAX, f64::MAX, f64::MIN, f64::MIN), |b, p| {
            (b.0.min(p.0), b.1.min(p.1), b.2.max(p.0), b.3.max(p.1))
        });
        let n = pts.len();
        self.fill_where(bbox, c, |x, y| {
            let side = |i: usize| {
                let (a, b) = (pts[i], pts[(i + 1) % n]);
                (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
            };
            (0..n).all(|i| side(i) >= 0.0) || (0..n).all(|i| side(i) <= 0.0)
        });
    }

    /// An arrow from `from` to `to` whose head is `head` pixels long.
    pub fn arrow(&mut self, from: (f64, f64), to: (f64, f64), width: f64, head: f64, c: Rgb) {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1e-9 {
            return;
        }
        let (ux, uy) = (dx / len, dy / len);
        let head = head.min(len);
        let base = (to.0 - ux * head, to.1 - uy * head);
        self.line(from, base, width, c);
        let w = head * 0.6;
        self.fill_convex(&[to, (base.0 - uy * w, base.1 + ux * w), (base.0 + uy * w, base.1 - ux * w)], c);
    }
}

/// What a picture shows besides the env's state.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderCtx<'a> {
    /// The action that led to the current state (`None` right after reset).
    pub last_action: Option<Action<'a>>,
    /// Gridworlds: the cells visited so far this episode, oldest first.
    pub path: &'a [usize],
}

/// The last action and a gridworld's path over one episode, for [`RenderCtx`].
#[derive(Clone, Debug, Default)]
pub struct Trail {
    path: Vec<usize>,
    discrete: Option<usize>,
    continuous: Vec<f64>,
    has_action: bool,
}

impl Trail {
    /// Starts a new episode at the env's current (just reset) state.
    pub fn reset(&mut self, env: &dyn Env) {
        self.path.clear();
        self.has_action = false;
        self.visit(env);
    }

    /// Notes `action`, just taken, and the state it led to.
    pub fn record(&mut self, env: &dyn Env, action: Action<'_>) {
        self.has_action = true;
        match action {
            Action::Discrete(a) => {
                self.discrete = Some(a);
                self.continuous.clear();
            }
            Action::Continuous(a) => {
                self.discrete = None;
                self.continuous.clear();
                self.continuous.extend_from_slice(a);
            }
        }
        self.visit(env);
    }

    fn visit(&mut self, env: &dyn Env) {
        if matches!(env.observation_space(), Space::Discrete(_)) {
            if let Some(&cell) = env.state().first() {
                self.path.push(cell as usize);
            }
        }
    }

    pub fn ctx(&self) -> RenderCtx<'_> {
        let last_action = self.has_action.then(|| match self.discrete {
            Some(a) => Action::Discrete(a),
            None => Action::Continuous(&self.continuous),
        });
        RenderCtx { last_action, path: &self.path }
    }
}

/// Gymnasium-like palette, shared by the scenes.
pub(crate) mod colour {
    use super::Rgb;
    pub const WHITE: Rgb = [255, 255, 255];
    pub const BLACK: Rgb = [0, 0, 0];
    /// CartPole's pole and Gymnasium's axle colour.
    pub const POLE: Rgb = [202, 152, 101];
    pub const AXLE: Rgb = [129, 132, 203];
    /// Pendulum's rod.
    pub const ROD: Rgb = [204, 77, 77];
    pub const TORQUE: Rgb = [40, 120, 220];
    pub const HILL: Rgb = [90, 90, 90];
    pub const FLAG: Rgb = [204, 204, 0];
    pub const FROZEN: Rgb = [206, 232, 250];
    pub const START: Rgb = [170, 210, 240];
    pub const HOLE: Rgb = [24, 38, 74];
    pub const GOAL: Rgb = [70, 180, 80];
    pub const CLIFF: Rgb = [150, 70, 40];
    pub const WALL: Rgb = [110, 110, 110];
    pub const GRID: Rgb = [120, 150, 180];
    pub const PATH: Rgb = [245, 150, 40];
    pub const AGENT: Rgb = [220, 30, 30];
}

/// The colour a gridworld cell is drawn in, by its map letter (`S F H G C W`).
pub fn cell_colour(letter: char) -> Rgb {
    match letter {
        'S' => colour::START,
        'H' => colour::HOLE,
        'G' => colour::GOAL,
        'C' => colour::CLIFF,
        'W' => colour::WALL,
        _ => colour::FROZEN,
    }
}

/// The torque/force of a continuous action, clipped to `[-max, max]`; 0 when there is none.
pub(crate) fn scalar_action(ctx: &RenderCtx<'_>, max: f64) -> f64 {
    match ctx.last_action {
        Some(Action::Continuous(a)) => a.first().copied().unwrap_or(0.0).clamp(-max, max),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_cover_what_they_should() {
        let mut f = Frame::new(20, 10, colour::WHITE);
        f.fill_rect(2.0, 2.0, 5.0, 4.0, colour::BLACK);
        assert_eq!(f.pixel(2, 2), Some(colour::BLACK));
        assert_eq!(f.pixel(4, 3), Some(colour::BLACK));
        assert_eq!(f.pixel(5, 3), Some(colour::WHITE));
        assert_eq!(f.pixel(20, 0), None);
        f.line((10.0, 5.0), (18.0, 5.0), 2.0, colour::ROD);
        assert_eq!(f.pixel(14, 4), Some(colour::ROD));
        assert_eq!(f.pixel(14, 7), Some(colour::WHITE));
        // Drawing outside the frame is clipped, not a panic.
        f.fill_circle(-5.0, -5.0, 3.0, colour::BLACK);
        f.arrow((0.0, 9.0), (30.0, 9.0), 1.0, 4.0, colour::AGENT);
        assert_eq!(f.rgb.len(), 20 * 10 * 3);
    }
}
