//! The User-Agent of a request, read from its `http.Header` (a `map[string][]string`)
//! when its handler starts: no probe on header parsing, so no probe hit per header line
//! or per HTTP/2 HEADERS frame. Only the User-Agent value is copied, never another
//! header. Both Go map implementations are walked slot by slot (a key's hash is seeded
//! per map, so it cannot be looked up): the maps of request headers are small.

use aya_ebpf::{cty::c_void, helpers::generated::bpf_loop};
use profiler_common::{
    http::UserAgent,
    offsets::{map_kind, GoOffsets},
};

use crate::{go, maps::scratch};

/// The canonical key (`textproto.CanonicalMIMEHeaderKey`), as both servers store it.
const KEY: &[u8; 10] = b"User-Agent";

/// Slots per bucket or group, in both implementations.
const SLOTS: usize = 8;
/// A `string` key.
const KEY_BYTES: usize = 16;
/// A `[]string` value.
const ELEM_BYTES: usize = 24;

/// `runtime.bmap` of a `map[string][]string`: 8 top-hash bytes, 8 keys, 8 values, and
/// the overflow bucket's address.
const BUCKET_BYTES: usize = SLOTS + SLOTS * (KEY_BYTES + ELEM_BYTES) + 8;
/// Top-hash values below this mark empty or evacuated slots (`minTopHash`).
const MIN_TOP_HASH: u8 = 5;
/// `hmap.flags` bit: the map is growing to the same size (`sameSizeGrow`).
const SAME_SIZE_GROW: u8 = 8;
/// Buckets scanned at most (new, overflow and old together): 13 keys fit in the 2
/// buckets of a map with B = 1, 52 in the 8 of B = 3.
const MAX_BUCKETS: u64 = 12;
/// `B` at most: larger header maps are not searched.
const MAX_B: u8 = 3;

/// A swiss-table group of a `map[string][]string`: a control word (one byte per slot,
/// high bit clear when the slot is full), then 8 slots of key and value.
const GROUP_BYTES: usize = 8 + SLOTS * (KEY_BYTES + ELEM_BYTES);
/// Groups scanned at most: a table of 8 groups holds 56 keys. Maps of more than one
/// table (over 896 keys) are not searched.
const MAX_GROUPS: u64 = 8;

/// Room for either.
pub const SLOTS_BYTES: usize = BUCKET_BYTES;
/// Bytes of a map header or table copied in one read (the fields read lie within them).
const MAP_WINDOW: usize = 48;

/// Copies the first `User-Agent` value of the `http.Header` at `header` (the map
/// pointer) into `ua`; leaves `ua.len` 0 when there is none. Uses the scratch buffer.
pub fn user_agent(header: u64, offsets: &GoOffsets, ua: &mut UserAgent) {
    ua.len = 0;
    if header == 0 {
        return;
    }
    let values = match offsets.map_kind {
        map_kind::SWISS => swiss(header, offsets),
        map_kind::BUCKETS => buckets(header, offsets),
        _ => None,
    };
    // The []string's first element is the string header of the first value.
    if let Some(values) = values {
        if let Ok(len) = go::read_string(values, &mut ua.bytes) {
            ua.len = len;
        }
    }
}

/// Go 1.24+: `internal/runtime/maps.Map`. With `dirLen` 0, `dirPtr` is one group;
/// otherwise it is a directory of `dirLen` table pointers.
fn swiss(map: u64, offsets: &GoOffsets) -> Option<u64> {
    let buf = go::window(map, MAP_WINDOW).ok()?;
    let (dir, dir_len) = (
        go::field(buf, offsets.swiss_dir_ptr),
        go::field(buf, offsets.swiss_dir_len),
    );
    if dir == 0 {
        return None;
    }
    if dir_len == 0 {
        return scan::<true>(dir).ok()?;
    }
    if dir_len > 1 {
        return None;
    }
    let table = go::read_u64(dir).ok()?;
    let buf = go::window(table, MAP_WINDOW).ok()?;
    let (groups, mask) = (
        go::field(buf, offsets.swiss_table_groups),
        go::field(buf, offsets.swiss_table_groups + 8),
    );
    for g in 0..MAX_GROUPS {
        if g > mask {
            break;
        }
        if let Some(value) = scan::<true>(groups + g * GROUP_BYTES as u64).ok()? {
            return Some(value);
        }
    }
    None
}

/// Go 1.19–1.23: `runtime.hmap`, 2^B buckets with overflow chains, and while the map
/// grows, old buckets whose slots are not yet evacuated.
fn buckets(map: u64, offsets: &GoOffsets) -> Option<u64> {
    let buf = go::window(map, MAP_WINDOW).ok()?;
    let b = go::field(buf, offsets.hmap_b) as u8;
    let flags = go::field(buf, offsets.hmap_flags) as u8;
    if b > MAX_B {
        return None;
    }
    let (new, old) = (
        go::field(buf, offsets.hmap_buckets),
        go::field(buf, offsets.hmap_oldbuckets),
    );
    let count = 1u64 << b;
    let old_count = if flags & SAME_SIZE_GROW != 0 {
        count
    } else {
        count / 2
    };
    // Bucket indexes run over the new buckets, then the old ones.
    let mut index = 0u64;
    let mut bucket = new;
    for _ in 0..MAX_BUCKETS {
        if bucket == 0 {
            index += 1;
            bucket = if index < count {
                new + index * BUCKET_BYTES as u64
            } else if old != 0 && index - count < old_count {
                old + (index - count) * BUCKET_BYTES as u64
            } else {
                return None;
            };
        }
        if let Some(value) = scan::<false>(bucket).ok()? {
            return Some(value);
        }
        // The overflow bucket (its address ends the copy `scan` left in the scratch
        // buffer), or 0 to move on to the next index.
        bucket = go::field(scratch()?, (BUCKET_BYTES - 8) as u64);
    }
    None
}

/// The first value's address of the `[]string` whose key is [`KEY`] in the bucket (top
/// hashes, keys, values) or, `SWISS`, the group (control word, key-value slots) at
/// `at`, copied into the scratch buffer (where it stays). The slots are
/// examined by `bpf_loop`, whose callback the verifier checks once, not once per slot
/// of every bucket.
fn scan<const SWISS: bool>(at: u64) -> Result<Option<u64>, i64> {
    go::window_of_block(at, if SWISS { GROUP_BYTES } else { BUCKET_BYTES })?;
    let mut search = Search { found: 0 };
    let callback: extern "C" fn(u64, *mut c_void) -> i64 =
        if SWISS { slot::<true> } else { slot::<false> };
    // SAFETY: the callback and its context match bpf_loop's contract; `search` outlives
    // the call.
    unsafe {
        bpf_loop(
            SLOTS as u32,
            callback as *mut c_void,
            (&mut search as *mut Search).cast(),
            0,
        );
    }
    Ok((search.found != 0).then_some(search.found))
}

/// What [`slot`] found.
#[repr(C)]
struct Search {
    /// The data pointer of the User-Agent's `[]string`; 0 until found.
    found: u64,
}

/// `bpf_loop` callback: whether slot `i` of the bucket or group in the scratch buffer
/// holds the User-Agent (then it stops the loop: 1).
extern "C" fn slot<const SWISS: bool>(i: u64, search: *mut c_void) -> i64 {
    let i = i as usize;
    if i >= SLOTS {
        return 1;
    }
    let Some(buf) = scratch() else {
        return 1;
    };
    // SAFETY: the context is `scan`'s `Search`.
    let search = unsafe { &mut *search.cast::<Search>() };
    let (full, key, value) = if SWISS {
        let slot = 8 + i * (KEY_BYTES + ELEM_BYTES);
        (buf[i] & 0x80 == 0, slot, slot + KEY_BYTES)
    } else {
        (
            buf[i] >= MIN_TOP_HASH,
            SLOTS + i * KEY_BYTES,
            SLOTS + SLOTS * KEY_BYTES + i * ELEM_BYTES,
        )
    };
    if full && key_is_user_agent(buf, key) {
        // A []string of at least one value.
        if go::word(buf, value + 8).is_some_and(|n| n > 0) {
            search.found = go::word(buf, value).unwrap_or(0);
        }
        return 1;
    }
    0
}

/// Where the last key found to be [`KEY`] keeps its bytes. Both servers intern the
/// canonical names of common headers (`textproto`'s and HTTP/2's tables), so every
/// request's key points there and one comparison of pointers replaces a read.
#[unsafe(no_mangle)]
static mut KEY_DATA: u64 = 0;

/// Whether the Go string header at `buf[at..]` is [`KEY`]: compared as two words, so
/// that the verifier follows two branches, not ten.
fn key_is_user_agent(buf: &[u8; SLOTS_BYTES], at: usize) -> bool {
    let (Some(data), Some(len)) = (go::word(buf, at), go::word(buf, at + 8)) else {
        return false;
    };
    if len != KEY.len() as u64 {
        return false;
    }
    // SAFETY: an aligned u64 global; a torn read is impossible and a stale one only
    // costs the read below.
    let known = unsafe { core::ptr::read_volatile(&raw const KEY_DATA) };
    if data == known {
        return true;
    }
    let mut key = [0u8; 16];
    if go::read_bytes(data, len, &mut key).is_err() {
        return false;
    }
    let (Some(head), Some(tail)) = (go::word(&key, 0), go::word(&key, 8)) else {
        return false;
    };
    let found = head == HEAD && tail & 0xffff == TAIL;
    if found {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(&raw mut KEY_DATA, data) };
    }
    found
}

/// [`KEY`] as a little-endian word and the 2 bytes after it.
const HEAD: u64 = u64::from_le_bytes(*b"User-Age");
const TAIL: u64 = u16::from_le_bytes(*b"nt") as u64;
