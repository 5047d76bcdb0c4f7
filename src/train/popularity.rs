//! Popularity statistics: interaction counts with an optional exponential time decay (half-life),
//! the recent-trend share and item age, relative to the data's reference time.

use crate::bundle::ItemStat;
use crate::data::dataset::Interaction;

pub fn item_stats(
    n_items: usize,
    inter: &[Interaction],
    reference_ts: i64,
    half_life_days: f64,
    trend_days: f64,
) -> Vec<ItemStat> {
    let mut stats = vec![
        ItemStat {
            age_days: f32::NAN,
            ..Default::default()
        };
        n_items
    ];
    let mut first = vec![i64::MAX; n_items];
    let mut recent = vec![0f32; n_items];
    for x in inter {
        let i = x.item as usize;
        let age = (reference_ts - x.ts).max(0) as f64 / 86_400.0;
        let decay = if half_life_days > 0.0 {
            (-std::f64::consts::LN_2 * age / half_life_days).exp()
        } else {
            1.0
        };
        let c = x.count.max(1) as f32;
        stats[i].popularity += (decay as f32) * c;
        stats[i].count += c;
        if age <= trend_days {
            recent[i] += c;
        }
        first[i] = first[i].min(x.ts);
    }
    for (i, s) in stats.iter_mut().enumerate() {
        if s.count > 0.0 {
            s.trend = recent[i] / s.count;
            s.age_days = (reference_ts - first[i]).max(0) as f32 / 86_400.0;
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(item: u32, ts: i64) -> Interaction {
        Interaction {
            user: 0,
            item,
            ts,
            weight: 1.0,
            count: 1,
        }
    }

    #[test]
    fn decay_counts_trend_and_age() {
        let day = 86_400;
        let now = 100 * day;
        let inter = [
            it(0, now),
            it(0, now - 10 * day),
            it(1, now - 60 * day),
            it(1, now - 60 * day),
        ];
        let s = item_stats(3, &inter, now, 10.0, 30.0);
        assert_eq!(s[0].count, 2.0);
        assert!(
            (s[0].popularity - 1.5).abs() < 1e-5,
            "1 + 0.5 after one half-life"
        );
        assert!(
            (s[1].popularity - 2.0 * 0.015625).abs() < 1e-5,
            "six half-lives"
        );
        assert_eq!(s[0].trend, 1.0);
        assert_eq!(s[1].trend, 0.0);
        assert!((s[1].age_days - 60.0).abs() < 1e-4);
        assert!(s[2].age_days.is_nan() && s[2].count == 0.0);
        let flat = item_stats(3, &inter, now, 0.0, 30.0);
        assert_eq!(flat[1].popularity, 2.0, "no decay when half-life is 0");
    }
}
