//! The built-in, dated table of cross-region inference profiles: which regions a geo prefix
//! (`us.`, `eu.`, `apac.` …) can route a request to. IAM checks the foundation model in the
//! region that serves the request, so a policy must name the model in every one of them.
//!
//! Data only, no I/O. To update: compare with AWS's "Supported Regions and models for
//! inference profiles" page, edit [`GEOS`] and bump [`AS_OF`].

/// When [`GEOS`] was last compared with AWS's documentation (year-month).
pub const AS_OF: &str = "2025-11";

/// Geo prefix → every destination region any model's profile of that prefix may use. A
/// given model's profile may use fewer; naming all of them only widens the policy to regions
/// the profile cannot reach anyway.
pub const GEOS: &[(&str, &[&str])] = &[
    ("us", &["us-east-1", "us-east-2", "us-west-1", "us-west-2"]),
    ("us-gov", &["us-gov-east-1", "us-gov-west-1"]),
    (
        "eu",
        &[
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
        ],
    ),
    (
        "apac",
        &[
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-7",
            "me-central-1",
        ],
    ),
    ("jp", &["ap-northeast-1", "ap-northeast-3"]),
    ("au", &["ap-southeast-2", "ap-southeast-4"]),
];

/// The prefix of global profiles: any commercial region, which IAM sees as the region-less
/// foundation-model ARN `arn:aws:bedrock:::foundation-model/ID`.
pub const GLOBAL: &str = "global";

/// The destination regions of a geo prefix, when the table knows it.
pub fn destinations(geo: &str) -> Option<&'static [&'static str]> {
    GEOS.iter().find(|(g, _)| *g == geo).map(|(_, regions)| *regions)
}

/// The ARN partition of a region (`aws`, `aws-us-gov`, `aws-cn`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("cn-") {
        "aws-cn"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_geo_lists_regions_of_its_own_area_once() {
        for (geo, regions) in GEOS {
            assert!(!regions.is_empty(), "{geo}");
            let mut sorted = regions.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), regions.len(), "{geo} lists a region twice");
        }
        assert!(destinations("us").unwrap().contains(&"us-west-2"));
        assert!(destinations("eu").unwrap().iter().all(|r| r.starts_with("eu-")));
        assert_eq!(destinations("global"), None, "global is not a table entry");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("eu-west-1"), "aws");
    }
}
