//! Sizes as MAAS counts them: SI suffixes (`100G` = 100·10⁹ bytes, MAAS's `machine_readable_bytes`),
//! plus the binary suffixes (`Gi`) people copy from Kubernetes.

/// Parses `100G`, `512M`, `1.5T`, `93Gi`, `100GB` or a plain byte count.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix('B').unwrap_or(s);
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim();
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1 {
        return None;
    }
    let mult: u64 = match unit {
        "" => 1,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        _ => return None,
    };
    match num.split_once('.') {
        None => num.parse::<u64>().ok()?.checked_mul(mult),
        Some((int, frac)) => {
            let int: u64 = int.parse().ok()?;
            let digits = frac.len().min(18) as u32;
            let frac: u64 = frac.get(..digits as usize)?.parse().ok()?;
            let scale = 10u64.checked_pow(digits)?;
            let whole = int.checked_mul(mult)?;
            let part = (u128::from(frac) * u128::from(mult) / u128::from(scale)) as u64;
            whole.checked_add(part)
        }
    }
}

/// `100000000000` → `100 GB` (SI, as MAAS displays sizes).
pub fn human_si(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else if v >= 100.0 || (v - v.round()).abs() < 0.05 {
        format!("{:.0} {}", v, UNITS[i])
    } else {
        format!("{:.1} {}", v, UNITS[i])
    }
}

/// `107374182400` → `100 GiB`.
pub fn human_iec(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else if (v - v.round()).abs() < 0.05 {
        format!("{:.0} {}", v, UNITS[i])
    } else {
        format!("{:.1} {}", v, UNITS[i])
    }
}

/// Parses a Kubernetes quantity (`100Gi`, `1.5T`, `500M`) into bytes.
pub fn parse_quantity(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(n) = s.strip_suffix('E') {
        return parse_bytes(n)?.checked_mul(1_000_000_000_000_000_000);
    }
    if let Some(n) = s.strip_suffix("Ei") {
        return parse_bytes(n)?.checked_mul(1 << 60);
    }
    parse_bytes(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_sizes_follow_maas() {
        assert_eq!(parse_bytes("100G"), Some(100_000_000_000));
        assert_eq!(parse_bytes("100GB"), Some(100_000_000_000));
        assert_eq!(parse_bytes("512M"), Some(512_000_000));
        assert_eq!(parse_bytes("1.5T"), Some(1_500_000_000_000));
        assert_eq!(parse_bytes("93Gi"), Some(93 * (1 << 30)));
        assert_eq!(parse_bytes("4096"), Some(4096));
        for bad in ["", "G", "10X", "1.2.3G", ".5G", "5.G", "-1G", "99999999999999999999T"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        assert_eq!(parse_quantity("100Gi"), Some(100 * (1 << 30)));
    }

    #[test]
    fn human() {
        assert_eq!(human_si(511_562_481_664), "512 GB");
        assert_eq!(human_si(100_000_000_000), "100 GB");
        assert_eq!(human_iec(100 * (1 << 30)), "100 GiB");
    }
}
