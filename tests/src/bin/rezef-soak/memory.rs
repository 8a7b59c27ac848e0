//! A process's resident memory, and its trend: whether a long run leaks shows as a slope,
//! not in any single sample, because caches fill first and the allocator keeps what it freed.

use anyhow::{Context, Result};

/// `VmRSS` (or another `Vm*` line) of process `pid`, in MiB, from `/proc/<pid>/status`.
pub fn status_mib(pid: u32, field: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in {path}"))?;
    let kib: f64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("{field} in {path}: {line:?}"))?;
    Ok(kib / 1024.0)
}

/// The least-squares slope of `(seconds, MiB)` samples, in MiB per hour; `None` for fewer
/// than two distinct times.
pub fn slope_per_hour(samples: &[(f64, f64)]) -> Option<f64> {
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|(t, _)| t).sum::<f64>() / n;
    let mean_m = samples.iter().map(|(_, m)| m).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (t, m) in samples {
        covariance += (t - mean_t) * (m - mean_m);
        variance += (t - mean_t) * (t - mean_t);
    }
    (variance > 0.0).then(|| covariance / variance * 3600.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_its_slope_and_a_point_has_none() {
        let line: Vec<_> = (0..10)
            .map(|i| (f64::from(i) * 60.0, 100.0 + f64::from(i)))
            .collect();
        let slope = slope_per_hour(&line).expect("a slope");
        assert!((slope - 60.0).abs() < 1e-9, "{slope}");
        assert_eq!(slope_per_hour(&[(5.0, 1.0)]), None);
        assert_eq!(slope_per_hour(&[]), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let rss = status_mib(std::process::id(), "VmRSS").expect("VmRSS");
        assert!(rss > 0.0);
    }
}
