;; Runs of one character class in a text, sixteen bytes at a time (WebAssembly SIMD). Loaded by
;; class-runs.ts, which writes the text into memory (one byte per character: it is used for ASCII
;; texts only), one 32-byte class table per class, and reads the runs back.
;;
;; A class is any set of ASCII characters, looked up by nibbles: byte b is a member when
;; lo[b & 15] & hi[b >> 4] is not zero, with hi[h] = 1 << h for h < 8 (0 above: no byte past
;; 0x7f is a member) and bit h of lo[l] set when 16h + l is in the class.
(module
  (memory (export "memory") 1)

  ;; A 16-bit mask of the members among sixteen bytes, given their low and high nibbles.
  (func $members (param $low v128) (param $high v128) (param $lo v128) (param $hi v128) (result i32)
    (i8x16.bitmask
      (i8x16.ne
        (v128.and (i8x16.swizzle (local.get $lo) (local.get $low)) (i8x16.swizzle (local.get $hi) (local.get $high)))
        (v128.const i64x2 0 0))))

  ;; For each of $classes classes (tables at $tab + 32k: lo, then hi), masks[k][i] (i64 at
  ;; $masks + k * $stride + 8i) = its members among bytes [$in + 64i, $in + 64i + 64), bit j for
  ;; byte 64i + j; $len is a multiple of 64 (the caller zeroes the bytes past the text). Each
  ;; block is loaded and split into nibbles once, for all the classes.
  (func (export "classify") (param $in i32) (param $len i32) (param $tab i32) (param $classes i32) (param $masks i32) (param $stride i32)
    (local $end i32) (local $k i32) (local $t i32) (local $out i32)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (local $h0 v128) (local $h1 v128) (local $h2 v128) (local $h3 v128)
    (local $lo v128) (local $hi v128)
    (local.set $end (i32.add (local.get $in) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $in) (local.get $end)))
        (local.set $l0 (v128.and (v128.load (local.get $in)) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
        (local.set $l1 (v128.and (v128.load offset=16 (local.get $in)) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
        (local.set $l2 (v128.and (v128.load offset=32 (local.get $in)) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
        (local.set $l3 (v128.and (v128.load offset=48 (local.get $in)) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
        (local.set $h0 (i8x16.shr_u (v128.load (local.get $in)) (i32.const 4)))
        (local.set $h1 (i8x16.shr_u (v128.load offset=16 (local.get $in)) (i32.const 4)))
        (local.set $h2 (i8x16.shr_u (v128.load offset=32 (local.get $in)) (i32.const 4)))
        (local.set $h3 (i8x16.shr_u (v128.load offset=48 (local.get $in)) (i32.const 4)))
        (local.set $k (i32.const 0))
        (local.set $t (local.get $tab))
        (local.set $out (local.get $masks))
        (block $classified
          (loop $class
            (br_if $classified (i32.ge_u (local.get $k) (local.get $classes)))
            (local.set $lo (v128.load (local.get $t)))
            (local.set $hi (v128.load offset=16 (local.get $t)))
            (i64.store (local.get $out)
              (i64.or
                (i64.or
                  (i64.extend_i32_u (call $members (local.get $l0) (local.get $h0) (local.get $lo) (local.get $hi)))
                  (i64.shl (i64.extend_i32_u (call $members (local.get $l1) (local.get $h1) (local.get $lo) (local.get $hi))) (i64.const 16)))
                (i64.or
                  (i64.shl (i64.extend_i32_u (call $members (local.get $l2) (local.get $h2) (local.get $lo) (local.get $hi))) (i64.const 32))
                  (i64.shl (i64.extend_i32_u (call $members (local.get $l3) (local.get $h3) (local.get $lo) (local.get $hi))) (i64.const 48)))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (local.set $t (i32.add (local.get $t) (i32.const 32)))
            (local.set $out (i32.add (local.get $out) (local.get $stride)))
            (br $class)))
        (local.set $in (i32.add (local.get $in) (i32.const 64)))
        (local.set $masks (i32.add (local.get $masks) (i32.const 8)))
        (br $next))))

  ;; The maximal runs of set bits at least $min long (1 to 64) in masks[0 .. $words), which must
  ;; be followed by a zero word, written as (start, end) i32 pairs at $out, left to right;
  ;; returns how many.
  (func (export "runs") (param $masks i32) (param $words i32) (param $min i32) (param $out i32) (result i32)
    (local $i i32) (local $base i32) (local $lo i64) (local $hi i64) (local $have i32) (local $step i64)
    (local $done i32) (local $count i32) (local $start i32) (local $end i32) (local $w i32) (local $clear i64)
    (local $block i64) (local $ones i64) (local $highs i64)
    ;; The widest block B (4 to 32 bits) with 2B - 1 <= $min: $block, its mask; $ones and $highs,
    ;; its lowest and highest bit in every block (a block of ones in x is a zero block of ~x).
    (if (i32.ge_u (local.get $min) (i32.const 7))
      (then (local.set $block (i64.const 0xf)) (local.set $ones (i64.const 0x1111111111111111)) (local.set $highs (i64.const 0x8888888888888888))))
    (if (i32.ge_u (local.get $min) (i32.const 15))
      (then (local.set $block (i64.const 0xff)) (local.set $ones (i64.const 0x0101010101010101)) (local.set $highs (i64.const 0x8080808080808080))))
    (if (i32.ge_u (local.get $min) (i32.const 31))
      (then (local.set $block (i64.const 0xffff)) (local.set $ones (i64.const 0x0001000100010001)) (local.set $highs (i64.const 0x8000800080008000))))
    (if (i32.ge_u (local.get $min) (i32.const 63))
      (then (local.set $block (i64.const 0xffffffff)) (local.set $ones (i64.const 0x0000000100000001)) (local.set $highs (i64.const 0x8000000080000000))))
    (block $last
      (loop $word
        (br_if $last (i32.ge_u (local.get $i) (local.get $words)))
        (local.set $base (i32.shl (local.get $i) (i32.const 6)))
        (local.set $lo (i64.load (i32.add (local.get $masks) (i32.shl (local.get $i) (i32.const 3)))))
        ;; Bits below $done lie in a run already written.
        (if (i32.gt_s (local.get $done) (local.get $base))
          (then (local.set $lo (call $from (local.get $lo) (i32.sub (local.get $done) (local.get $base))))))
        ;; A run of 2B - 1 or more covers a whole aligned block of B bits: in this word, or (when it
        ;; runs past the word's end) the next word's first. Without one, no such run starts here.
        (if (i32.and (i64.ne (local.get $lo) (i64.const 0))
              (i32.or (i64.eqz (local.get $block))
                (i32.or
                  (i64.ne (i64.and (i64.and (i64.sub (i64.xor (local.get $lo) (i64.const -1)) (local.get $ones)) (local.get $lo)) (local.get $highs)) (i64.const 0))
                  (i32.and (i64.ne (i64.shr_u (local.get $lo) (i64.const 63)) (i64.const 0))
                    (i64.eq (i64.and (i64.load offset=8 (i32.add (local.get $masks) (i32.shl (local.get $i) (i32.const 3)))) (local.get $block)) (local.get $block))))))
          (then
            ;; Erosion: keep bit p only where bits p .. p + $min - 1 are all set. A run of $have set
            ;; bits at p and one at p + $step (with $step <= $have) make a run of $have + $step, so
            ;; $have doubles until it reaches $min. The next word supplies the bits past this one;
            ;; its own top bits lose their lookahead, but never reach this word's (a shift < 64).
            (local.set $hi (i64.load offset=8 (i32.add (local.get $masks) (i32.shl (local.get $i) (i32.const 3)))))
            (local.set $have (i32.const 1))
            (block $eroded
              (loop $erode
                (br_if $eroded (i32.ge_u (local.get $have) (local.get $min)))
                (local.set $step (i64.extend_i32_u
                  (select (local.get $have) (i32.sub (local.get $min) (local.get $have))
                    (i32.le_u (local.get $have) (i32.sub (local.get $min) (local.get $have))))))
                (local.set $lo (i64.and (local.get $lo)
                  (i64.or (i64.shr_u (local.get $lo) (local.get $step)) (i64.shl (local.get $hi) (i64.sub (i64.const 64) (local.get $step))))))
                (local.set $hi (i64.and (local.get $hi) (i64.shr_u (local.get $hi) (local.get $step))))
                (local.set $have (i32.add (local.get $have) (i32.wrap_i64 (local.get $step))))
                (br $erode)))
            ;; Each bit left starts $min members; the lowest one of a run is where the run starts
            ;; (a run that began earlier was written when its own start was met, and $done skips it).
            (block $written
              (loop $run
                (br_if $written (i64.eqz (local.get $lo)))
                (local.set $start (i32.add (local.get $base) (i32.wrap_i64 (i64.ctz (local.get $lo)))))
                ;; Its end: the first clear bit from $start on (the zero word stops the search).
                (local.set $end (local.get $start))
                (block $found
                  (loop $scan
                    (local.set $w (i32.shr_u (local.get $end) (i32.const 6)))
                    (local.set $clear (i64.shr_u
                      (i64.xor (i64.load (i32.add (local.get $masks) (i32.shl (local.get $w) (i32.const 3)))) (i64.const -1))
                      (i64.extend_i32_u (i32.and (local.get $end) (i32.const 63)))))
                    (if (i64.ne (local.get $clear) (i64.const 0))
                      (then
                        (local.set $end (i32.add (local.get $end) (i32.wrap_i64 (i64.ctz (local.get $clear)))))
                        (br $found)))
                    (local.set $end (i32.shl (i32.add (local.get $w) (i32.const 1)) (i32.const 6)))
                    (br $scan)))
                (i32.store (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 3))) (local.get $start))
                (i32.store offset=4 (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 3))) (local.get $end))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))
                (local.set $done (local.get $end))
                (local.set $lo (call $from (local.get $lo) (i32.sub (local.get $end) (local.get $base))))
                (br $run)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $word)))
    (local.get $count))

  ;; $bits without the bits below $k (0 when $k >= 64).
  (func $from (param $bits i64) (param $k i32) (result i64)
    (if (result i64) (i32.ge_u (local.get $k) (i32.const 64))
      (then (i64.const 0))
      (else (i64.and (local.get $bits) (i64.shl (i64.const -1) (i64.extend_i32_u (local.get $k)))))))
)
