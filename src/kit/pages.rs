//! Seed pages: how a kit lists a million seeds with a signed header that does not grow per seed
//! (issue 14; the design and why: docs/DECISIONS.md, "Million-file kits").
//!
//! A **page** is a payload file `index/seeds/NNNNNNNN.sha256` (eight decimal digits, numbered
//! from 1) in the exact form `sha256sum` writes and `sha256sum -c --strict` reads
//! (`<64 lowercase hex>  seeds/<key>\n`, sorted by path bytes, see [`crate::kit::sums`]). It lists
//! at most [`MAX_PAGE_LINES`] seeds in at most [`MAX_PAGE_BYTES`]; the pages together list every
//! seed once, in path order, each page's first path after the previous page's last. The signed
//! header lists each page by a [`PageEntry`] (its digest and size, how many seeds it lists and
//! the sum of their sizes) instead of listing the seeds; in the tar stream each page comes just
//! before the seeds it lists.
//!
//! [`cut`] is the builder's side (deterministic: a page ends when the next line would exceed
//! either bound). [`PageCursor`] is the verifier's: it walks the stream in lockstep, taking a page
//! (compared with its signed size and digest before it is parsed), then that page's seeds one by
//! one (each named by the page, in its order, its size counted against the page's signed sum
//! before its data is read). It holds one page, so a verifier's memory does not grow with the
//! number of seeds.

use serde::{Deserialize, Serialize};

use crate::kit::digest::Sha256Hex;
use crate::kit::manifest::FileEntry;
use crate::kit::path::KitPath;
use crate::kit::sums::{self, SumLine, SumsError};

/// The folder of the pages.
pub const PAGE_DIR: &str = "index/seeds";
/// The folder of the seeds a page lists.
pub const SEED_DIR: &str = "seeds";
/// Most seeds a page lists.
pub const MAX_PAGE_LINES: u64 = 4096;
/// Largest page, in bytes.
pub const MAX_PAGE_BYTES: u64 = 1 << 20;
/// Most pages a kit has: ten million seeds (the manifest's bound on payload files) in pages cut
/// at [`MAX_PAGE_LINES`] or, with the longest kit paths, at [`MAX_PAGE_BYTES`] (at least 254
/// lines of 4,162 bytes).
pub const MAX_PAGES: u64 = 1 << 16;

/// A page as the signed manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageEntry {
    /// The page file (`index/seeds/NNNNNNNN.sha256`), its SHA-256 and size.
    #[serde(flatten)]
    pub file: FileEntry,
    /// How many seeds it lists.
    pub files: u64,
    /// The sum of the sizes of the seeds it lists.
    pub bytes: u64,
}

/// A seed as the builder has it: its path (`seeds/<key>`), digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedLine {
    /// `seeds/<key>`.
    pub path: KitPath,
    /// SHA-256 of its content.
    pub sha256: Sha256Hex,
    /// Its size.
    pub size: u64,
}

/// A page the builder writes: its signed entry and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPage {
    /// What the manifest lists.
    pub entry: PageEntry,
    /// The page file.
    pub bytes: Vec<u8>,
}

/// Why pages were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    /// The manifest's page list breaks a rule.
    #[error("page list: {0}")]
    List(String),
    /// A page's bytes are not the signed ones.
    #[error("{page}: {problem}")]
    Changed {
        /// The page.
        page: String,
        /// Size or digest, what was found.
        problem: String,
    },
    /// A page is not in `sha256sum` form.
    #[error("{page}: {source}")]
    Malformed {
        /// The page.
        page: String,
        /// The rule broken.
        source: SumsError,
    },
    /// A page breaks a rule of the pages (a path outside `seeds/`, order across pages, counts).
    #[error("{page}: {problem}")]
    Invalid {
        /// The page.
        page: String,
        /// The rule broken.
        problem: String,
    },
    /// A seed would take its page's seeds past their signed total.
    #[error("{entry}: {problem}")]
    SeedSize {
        /// The seed.
        entry: String,
        /// The sizes.
        problem: String,
    },
    /// An entry of the stream is not the one the pages expect there.
    #[error("{entry}: {problem}")]
    Unexpected {
        /// The entry.
        entry: String,
        /// What was expected instead.
        problem: String,
    },
}

/// The path of page `n` (from 1).
pub fn page_path(n: u64) -> KitPath {
    KitPath::new(&format!("{PAGE_DIR}/{n:08}.sha256")).expect("a page path is a kit path")
}

/// Whether `path` is under the pages' folder (`index/seeds/`).
pub fn is_page_path(path: &KitPath) -> bool {
    path.as_str()
        .strip_prefix(PAGE_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether `path` is a seed's (`seeds/<key>`).
pub fn is_seed_path(path: &KitPath) -> bool {
    path.as_str()
        .strip_prefix(SEED_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The shortest line a page can hold: a digest, two spaces, `seeds/` and a one-byte key.
const SMALLEST_LINE: u64 = 64 + 2 + 7 + 1;

/// The bytes of one line of a page.
fn line_len(path: &KitPath) -> u64 {
    64 + 2 + path.as_str().len() as u64 + 1
}

/// Where pages start, as indices into seed paths sorted by bytes with no repeat: a page ends
/// where the next line would make it list more than [`MAX_PAGE_LINES`] seeds or hold more than
/// [`MAX_PAGE_BYTES`]. Depends on the paths alone, so a builder knows the pages before it reads a
/// seed. Empty for no seeds.
pub fn starts<'a>(paths: impl IntoIterator<Item = &'a KitPath>) -> Vec<usize> {
    let mut starts = Vec::new();
    let (mut lines, mut size) = (0u64, 0u64);
    for (i, path) in paths.into_iter().enumerate() {
        let len = line_len(path);
        if starts.is_empty() || lines == MAX_PAGE_LINES || size + len > MAX_PAGE_BYTES {
            starts.push(i);
            (lines, size) = (0, 0);
        }
        lines += 1;
        size += len;
    }
    starts
}

/// Cuts seeds, sorted by path bytes with no repeat, into pages at [`starts`].
pub fn cut(seeds: &[SeedLine]) -> Vec<BuiltPage> {
    cut_each(seeds).collect()
}

/// [`cut`], one page at a time (a builder holds one page's bytes, not all of them).
pub fn cut_each(seeds: &[SeedLine]) -> impl Iterator<Item = BuiltPage> + '_ {
    debug_assert!(
        seeds
            .windows(2)
            .all(|w| w[0].path.as_str().as_bytes() < w[1].path.as_str().as_bytes())
    );
    let starts = starts(seeds.iter().map(|s| &s.path));
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .copied()
        .chain([seeds.len()])
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .enumerate()
        .map(move |(n, (start, end))| {
            let page = &seeds[start..end];
            let lines: Vec<SumLine> = page
                .iter()
                .map(|s| SumLine {
                    path: s.path.clone(),
                    sha256: s.sha256.clone(),
                })
                .collect();
            let bytes = sums::format(&lines);
            BuiltPage {
                entry: PageEntry {
                    file: FileEntry {
                        path: page_path(n as u64 + 1),
                        sha256: Sha256Hex::of(&bytes),
                        size: bytes.len() as u64,
                    },
                    files: page.len() as u64,
                    bytes: page.iter().map(|s| s.size).sum(),
                },
                bytes,
            }
        })
}

/// Checks the manifest's page list on its own: numbered from 1 without gap, each within the
/// bounds, at most [`MAX_PAGES`]. Returns the seeds listed and the sum of their sizes.
pub fn check_entries(pages: &[PageEntry]) -> Result<(u64, u64), PageError> {
    if pages.len() as u64 > MAX_PAGES {
        return Err(PageError::List(format!(
            "{} pages, more than {MAX_PAGES}",
            pages.len()
        )));
    }
    let (mut files, mut bytes) = (0u64, 0u64);
    for (i, p) in pages.iter().enumerate() {
        let expected = page_path(i as u64 + 1);
        if p.file.path != expected {
            return Err(PageError::List(format!(
                "page {} is {}, expected {expected}",
                i + 1,
                p.file.path
            )));
        }
        if !(1..=MAX_PAGE_LINES).contains(&p.files)
            || p.file.size > MAX_PAGE_BYTES
            || p.file.size < p.files * SMALLEST_LINE
        {
            return Err(PageError::List(format!(
                "{}: {} seeds in {} bytes is not a page (1 to {MAX_PAGE_LINES} seeds, at most \
                 {MAX_PAGE_BYTES} bytes)",
                p.file.path, p.files, p.file.size
            )));
        }
        files += p.files;
        bytes = bytes
            .checked_add(p.bytes)
            .ok_or_else(|| PageError::List("the seeds' sizes overflow".into()))?;
    }
    Ok((files, bytes))
}

/// What the stream must hold next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect<'a> {
    /// This page.
    Page(&'a PageEntry),
    /// This seed, listed by the current page.
    Seed(&'a SumLine),
    /// Nothing more: every page and every seed it lists were taken.
    Done,
}

/// Walks a stream of pages and seeds in lockstep with the signed page list (module docs).
#[derive(Debug)]
pub struct PageCursor<'a> {
    pages: &'a [PageEntry],
    /// The index in `pages` of the page whose seeds are being taken, or of the next page.
    page: usize,
    /// The current page's lines, once it was taken.
    lines: Vec<SumLine>,
    /// The next line of `lines` to take.
    at: usize,
    /// Sizes of the current page's seeds taken so far.
    bytes: u64,
    /// The last seed of the previous page.
    last: Option<KitPath>,
}

impl<'a> PageCursor<'a> {
    /// A cursor at the first page of `pages` (checked by [`check_entries`] first).
    pub fn new(pages: &'a [PageEntry]) -> Result<PageCursor<'a>, PageError> {
        check_entries(pages)?;
        Ok(PageCursor {
            pages,
            page: 0,
            lines: Vec::new(),
            at: 0,
            bytes: 0,
            last: None,
        })
    }

    /// What the stream must hold next.
    pub fn expect(&self) -> Expect<'_> {
        match self.lines.get(self.at) {
            Some(line) => Expect::Seed(line),
            None => self.pages.get(self.page).map_or(Expect::Done, Expect::Page),
        }
    }

    /// Takes the page expected next: its bytes must be the signed ones (size and digest,
    /// compared before anything is parsed) and list seeds in order after the previous page's.
    pub fn take_page(&mut self, bytes: &[u8]) -> Result<(), PageError> {
        let pages = self.pages;
        let entry = match self.expect() {
            Expect::Page(_) => &pages[self.page],
            Expect::Seed(line) => {
                return Err(PageError::Unexpected {
                    entry: "a page".into(),
                    problem: format!("expected the seed {}", line.path),
                });
            }
            Expect::Done => {
                return Err(PageError::Unexpected {
                    entry: "a page".into(),
                    problem: "every page was already taken".into(),
                });
            }
        };
        let page = entry.file.path.to_string();
        if bytes.len() as u64 != entry.file.size {
            return Err(PageError::Changed {
                page,
                problem: format!(
                    "{} bytes, the signed size is {}",
                    bytes.len(),
                    entry.file.size
                ),
            });
        }
        let found = Sha256Hex::of(bytes);
        if found != entry.file.sha256 {
            return Err(PageError::Changed {
                page,
                problem: format!("SHA-256 {found}, the signed one is {}", entry.file.sha256),
            });
        }
        let lines = sums::parse(bytes).map_err(|source| PageError::Malformed {
            page: page.clone(),
            source,
        })?;
        let invalid = |problem: String| PageError::Invalid {
            page: page.clone(),
            problem,
        };
        if lines.len() as u64 != entry.files {
            return Err(invalid(format!(
                "lists {} seeds, the signed count is {}",
                lines.len(),
                entry.files
            )));
        }
        if let Some(line) = lines.iter().find(|l| !is_seed_path(&l.path)) {
            return Err(invalid(format!("{} is not under {SEED_DIR}/", line.path)));
        }
        if let (Some(last), Some(first)) = (&self.last, lines.first())
            && last.as_str().as_bytes() >= first.path.as_str().as_bytes()
        {
            return Err(invalid(format!(
                "{} does not come after {last}, the previous page's last seed",
                first.path
            )));
        }
        self.lines = lines;
        self.at = 0;
        self.bytes = 0;
        self.close_page_if_done(entry)?;
        Ok(())
    }

    /// Takes the seed expected next, before its data is read: it must be the path the page
    /// lists here, and its size must keep the page's seeds within their signed sum. Returns the
    /// digest its data must have.
    pub fn take_seed(&mut self, path: &KitPath, size: u64) -> Result<Sha256Hex, PageError> {
        let pages = self.pages;
        let expected = match self.expect() {
            Expect::Seed(line) => line,
            Expect::Page(p) => {
                return Err(PageError::Unexpected {
                    entry: path.to_string(),
                    problem: format!("expected the page {}", p.file.path),
                });
            }
            Expect::Done => {
                return Err(PageError::Unexpected {
                    entry: path.to_string(),
                    problem: "every seed the pages list was already taken".into(),
                });
            }
        };
        let entry = &pages[self.page];
        if &expected.path != path {
            return Err(PageError::Unexpected {
                entry: path.to_string(),
                problem: format!("expected {} (listed by {})", expected.path, entry.file.path),
            });
        }
        let digest = expected.sha256.clone();
        self.bytes = self
            .bytes
            .checked_add(size)
            .filter(|&b| b <= entry.bytes)
            .ok_or_else(|| PageError::SeedSize {
                entry: path.to_string(),
                problem: format!(
                    "{size} bytes would take the seeds of {} past their signed total of {}",
                    entry.file.path, entry.bytes
                ),
            })?;
        self.at += 1;
        self.close_page_if_done(entry)?;
        Ok(digest)
    }

    /// After the last seed of a page: its sizes must add up to the signed sum; the next page is
    /// expected.
    fn close_page_if_done(&mut self, entry: &PageEntry) -> Result<(), PageError> {
        if self.at < self.lines.len() {
            return Ok(());
        }
        if self.bytes != entry.bytes {
            return Err(PageError::Invalid {
                page: entry.file.path.to_string(),
                problem: format!(
                    "its seeds hold {} bytes, the signed total is {}",
                    self.bytes, entry.bytes
                ),
            });
        }
        self.last = self.lines.pop().map(|l| l.path);
        self.lines = Vec::new();
        self.at = 0;
        self.page += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(key: &str, size: u64) -> SeedLine {
        SeedLine {
            path: KitPath::new(&format!("seeds/{key}")).unwrap(),
            sha256: Sha256Hex::of(key.as_bytes()),
            size,
        }
    }

    fn seeds(n: usize) -> Vec<SeedLine> {
        (0..n)
            .map(|i| seed(&format!("obj/{i:07}.json"), 10))
            .collect()
    }

    /// Walks `pages` with a cursor as a verifier would, feeding each seed of `all` in order.
    fn walk(built: &[BuiltPage], all: &[SeedLine]) -> Result<usize, PageError> {
        let entries: Vec<PageEntry> = built.iter().map(|p| p.entry.clone()).collect();
        let mut cursor = PageCursor::new(&entries)?;
        let mut next_seed = all.iter();
        let mut taken = 0;
        loop {
            match cursor.expect() {
                Expect::Done => break,
                Expect::Page(p) => {
                    let n: u64 = p.file.path.as_str()[12..20].parse().unwrap();
                    cursor.take_page(&built[n as usize - 1].bytes)?;
                }
                Expect::Seed(_) => {
                    let s = next_seed.next().expect("a seed the pages list");
                    assert_eq!(cursor.take_seed(&s.path, s.size)?, s.sha256);
                    taken += 1;
                }
            }
        }
        Ok(taken)
    }

    #[test]
    fn pages_are_cut_at_the_line_bound_and_read_back_in_lockstep() {
        let all = seeds(10_000);
        let built = cut(&all);
        assert_eq!(
            built.iter().map(|p| p.entry.files).collect::<Vec<_>>(),
            vec![4096, 4096, 1808]
        );
        assert_eq!(
            built[1].entry.file.path.as_str(),
            "index/seeds/00000002.sha256"
        );
        assert_eq!(
            check_entries(&built.iter().map(|p| p.entry.clone()).collect::<Vec<_>>()),
            Ok((10_000, 100_000))
        );
        assert_eq!(walk(&built, &all), Ok(10_000));
        // The same seeds give the same pages.
        assert_eq!(cut(&all), built);
        // A page is what `sha256sum` writes.
        let first = String::from_utf8(built[0].bytes.clone()).unwrap();
        assert_eq!(
            first.lines().next().unwrap(),
            format!(
                "{}  seeds/obj/0000000.json",
                Sha256Hex::of(b"obj/0000000.json")
            )
        );
    }

    #[test]
    fn pages_of_long_names_are_cut_at_the_byte_bound() {
        // Paths of 3,776 bytes (components of at most 255 bytes).
        let long = vec!["k".repeat(250); 15].join("/");
        let all: Vec<SeedLine> = (0..600)
            .map(|i| seed(&format!("{i:04}/{long}"), 1))
            .collect();
        let built = cut(&all);
        assert!(built.iter().all(|p| p.entry.file.size <= MAX_PAGE_BYTES));
        assert_eq!(
            built[0].entry.files,
            MAX_PAGE_BYTES / line_len(&all[0].path)
        );
        assert_eq!(walk(&built, &all), Ok(600));
    }

    #[test]
    fn a_page_whose_bytes_are_not_the_signed_ones_is_refused_before_it_is_parsed() {
        let all = seeds(5);
        let mut built = cut(&all);
        built[0].bytes[70] ^= 1;
        assert!(matches!(walk(&built, &all), Err(PageError::Changed { .. })));
        built[0].bytes.push(b'\n');
        let err = walk(&built, &all).unwrap_err();
        assert!(err.to_string().contains("signed size"), "{err}");
    }

    /// Re-signs a page's bytes (as a builder that made a bad page would).
    fn page_of(lines: &str, files: u64, bytes: u64) -> BuiltPage {
        BuiltPage {
            entry: PageEntry {
                file: FileEntry {
                    path: page_path(1),
                    sha256: Sha256Hex::of(lines.as_bytes()),
                    size: lines.len() as u64,
                },
                files,
                bytes,
            },
            bytes: lines.as_bytes().to_vec(),
        }
    }

    #[test]
    fn signed_pages_that_break_the_rules_are_refused() {
        let h = "a".repeat(64);
        // A path outside seeds/.
        let page = page_of(&format!("{h}  migrations/x.sql\n"), 1, 1);
        let err = walk(&[page], &[]).unwrap_err();
        assert!(matches!(err, PageError::Invalid { .. }), "{err}");
        // Not sha256sum's form.
        let page = page_of(&format!("{h} seeds/xyz\n"), 1, 1);
        assert!(matches!(
            walk(&[page], &[]),
            Err(PageError::Malformed { .. })
        ));
        // A count other than the signed one.
        let page = page_of(&format!("{h}  seeds/{}\n", "x".repeat(80)), 2, 1);
        let err = walk(&[page], &[]).unwrap_err();
        assert!(err.to_string().contains("signed count"), "{err}");
        // The second page does not come after the first.
        let mut built = cut(&[seed("b", 1)]);
        let mut second = cut(&[seed("a", 1)]).remove(0);
        second.entry.file.path = page_path(2);
        built.push(second);
        let err = walk(&built, &[seed("b", 1), seed("a", 1)]).unwrap_err();
        assert!(err.to_string().contains("previous page's last"), "{err}");
    }

    #[test]
    fn seeds_out_of_step_with_their_page_are_refused_before_their_data() {
        let all = seeds(3);
        let built = cut(&all);
        let entries = vec![built[0].entry.clone()];
        // A seed before its page.
        let mut cursor = PageCursor::new(&entries).unwrap();
        let err = cursor.take_seed(&all[0].path, 10).unwrap_err();
        assert!(err.to_string().contains("expected the page"), "{err}");
        // Another seed than the one listed there.
        cursor.take_page(&built[0].bytes).unwrap();
        let err = cursor.take_seed(&all[1].path, 10).unwrap_err();
        assert!(
            err.to_string().contains("expected seeds/obj/0000000.json"),
            "{err}"
        );
        // Sizes past the signed sum (30): refused at the seed that passes it.
        assert!(cursor.take_seed(&all[0].path, 10).is_ok());
        let err = cursor.take_seed(&all[1].path, 21).unwrap_err();
        assert!(err.to_string().contains("past their signed total"), "{err}");
        // Sizes short of it: refused at the page's last seed.
        let mut cursor = PageCursor::new(&entries).unwrap();
        cursor.take_page(&built[0].bytes).unwrap();
        cursor.take_seed(&all[0].path, 10).unwrap();
        cursor.take_seed(&all[1].path, 10).unwrap();
        let err = cursor.take_seed(&all[2].path, 9).unwrap_err();
        assert!(err.to_string().contains("signed total is 30"), "{err}");
        // A seed after the last.
        let mut cursor = PageCursor::new(&entries).unwrap();
        cursor.take_page(&built[0].bytes).unwrap();
        for s in &all {
            cursor.take_seed(&s.path, 10).unwrap();
        }
        assert_eq!(cursor.expect(), Expect::Done);
        assert!(cursor.take_seed(&all[0].path, 10).is_err());
        assert!(cursor.take_page(&built[0].bytes).is_err());
    }

    #[test]
    fn page_lists_that_break_the_rules_are_refused() {
        let built = cut(&seeds(5000));
        let mut entries: Vec<PageEntry> = built.iter().map(|p| p.entry.clone()).collect();
        entries.swap(0, 1);
        assert!(
            check_entries(&entries)
                .unwrap_err()
                .to_string()
                .contains("expected index/seeds/00000001.sha256")
        );
        let mut entries: Vec<PageEntry> = built.iter().map(|p| p.entry.clone()).collect();
        entries[0].files = MAX_PAGE_LINES + 1;
        assert!(check_entries(&entries).is_err());
        let mut entries: Vec<PageEntry> = built.iter().map(|p| p.entry.clone()).collect();
        entries[1].bytes = u64::MAX;
        assert!(
            check_entries(&entries)
                .unwrap_err()
                .to_string()
                .contains("overflow")
        );
        let mut entries: Vec<PageEntry> = built.iter().map(|p| p.entry.clone()).collect();
        entries[0].files = 0;
        assert!(check_entries(&entries).is_err());
    }
}
