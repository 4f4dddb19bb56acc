//! A coarse raster over the country data that answers "which country, and is the border
//! near?" with one array read for the vast majority of fixes.
//!
//! A cell is marked with its part only when no border edge comes within the border
//! tolerance of any point of the cell; everything else falls back to the exact indexed
//! test. Trucks spend most of their time far from borders, so most fixes never touch a
//! polygon.

use geo::Coord;

use super::country::CountryIndex;
use super::metric::M_PER_DEG;

/// Upper bound on cells, which bounds memory (4 bytes a cell) and build time.
const MAX_CELLS: f64 = 1_000_000.0;
/// Finest cell side in degrees; finer cells gain little because the border tolerance
/// already blanks a band a few kilometres wide around every border.
const MIN_STEP_DEG: f64 = 0.02;
const MIXED: u32 = u32::MAX;
const NOWHERE: u32 = u32::MAX - 1;

pub(crate) enum Cell {
    /// Every point of the cell is inside this part, farther than the tolerance from a border.
    Inside(u32),
    /// Every point of the cell is outside every country, farther than the tolerance.
    Nowhere,
    /// Near a border (or off the grid): ask the polygons.
    Mixed,
}

pub(crate) struct Grid {
    x0: f64,
    y0: f64,
    step: f64,
    nx: usize,
    ny: usize,
    cells: Vec<u32>,
}

impl Grid {
    pub(crate) fn build(index: &CountryIndex) -> Option<Grid> {
        let bounds = index.bounds()?;
        let (w, h) = (bounds.width(), bounds.height());
        if !(w.is_finite() && h.is_finite()) || index.parts_len() == 0 {
            return None;
        }
        let step = (w * h / MAX_CELLS).sqrt().max(MIN_STEP_DEG);
        let nx = (w / step).ceil() as usize + 1;
        let ny = (h / step).ceil() as usize + 1;
        let (x0, y0) = (bounds.min().x, bounds.min().y);
        let mut cells = vec![MIXED; nx * ny];
        let mut hint = None;
        for j in 0..ny {
            let y = y0 + (j as f64 + 0.5) * step;
            let cos = y.to_radians().cos().abs().max(0.01);
            let half_diagonal_m = 0.5 * step * M_PER_DEG * (1.0 + cos * cos).sqrt() * 1.01;
            let radius = half_diagonal_m + index.tolerance_m();
            for i in 0..nx {
                let c = Coord {
                    x: x0 + (i as f64 + 0.5) * step,
                    y,
                };
                if index.near_border(c, radius) {
                    continue;
                }
                let part = index.part_at(c, hint);
                hint = part.or(hint);
                cells[j * nx + i] = part.unwrap_or(NOWHERE);
            }
        }
        Some(Grid {
            x0,
            y0,
            step,
            nx,
            ny,
            cells,
        })
    }

    pub(crate) fn cell(&self, c: Coord<f64>) -> Cell {
        let fx = (c.x - self.x0) / self.step;
        let fy = (c.y - self.y0) / self.step;
        if !(fx >= 0.0 && fy >= 0.0) {
            return Cell::Mixed;
        }
        let (i, j) = (fx as usize, fy as usize);
        if i >= self.nx || j >= self.ny {
            return Cell::Mixed;
        }
        match self.cells[j * self.nx + i] {
            MIXED => Cell::Mixed,
            NOWHERE => Cell::Nowhere,
            part => Cell::Inside(part),
        }
    }
}
