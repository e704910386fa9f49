# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The compiled tagging engine: the per-video path of `Tagger.tag_batch` on C data.

It computes exactly what the Python engine of ``tagger.py`` computes (that engine is the
reference; ``tests/unit/test_tagging_engines.py`` compares the two on ~45k inputs), but a
caption's normalisation, both key scans, the terms, the context rules and the explanation
run on C arrays: code points, key and rule ids, context sets as bit masks, fired spans as
(topic, start, end, label) rows. Python objects are made only for results (and shared by
videos with the same explanation) and for the rare Arabic attached-suffix check.

* Normalisation: each code point is folded through a table filled lazily from
  `normalise.fold_code_point` (the fold of a text is the fold of its code points: NFKD,
  case folding and mark removal act on one code point at a time, and the marks that
  canonical ordering could move are never part of a token), then cut into
  space-separated tokens as `Tagger._normalise_captions` does (newlines are sentence
  breaks).
* Keys: a prefix tree of the lexicon's keys (`Trie`; a symbol table maps the ~70 code
  points the keys use), walked from each space of the text; hits come in the order
  pyahocorasick reports them (by end, longest first).
* Hashtags are digested by the Python side once per hashtag (`TagDigest`) and assembled
  per video here, as `Tagger._zone_entry` does.

A video beyond the fixed limits (a caption with NUL, more than `MAX_ROWS` hits or fired
rows, more than `MAX_TAGS` hashtags) comes back as None and the Python engine tags it.

A built engine can be saved as plain data (`Engine.state()`, bytes and lists) and made
again from it (`Engine(state=...)`) in milliseconds: the on-disk lexicon cache keeps it.
"""

from libc.stdint cimport int16_t, int32_t, uint16_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

from cpython.unicode cimport Py_UNICODE_ISALNUM, PyUnicode_GET_LENGTH


from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM


cdef extern from "Python.h":
    object PyUnicode_FromKindAndData(int kind, const void *buffer, Py_ssize_t size)
    Py_UCS4* PyUnicode_AsUCS4(object text, Py_UCS4* buffer, Py_ssize_t buflen, int copy_null)
    Py_UCS4* PyUnicode_AsUCS4Copy(object text)
    void PyMem_Free(void* p)
    int PyUnicode_4BYTE_KIND


cdef enum:
    MAX_CONTEXT_SETS = 512
    MASK_WORDS = 8  # MAX_CONTEXT_SETS / 64
    MAX_ROWS = 512  # hits, fired terms and context hits of one video
    MAX_TAGS = 64  # distinct hashtags of one video
    MAX_SENTENCE_CHARS = 32
    RESULT_SLOTS = 4096  # remembered results (a power of two)
    SIG_MAX = 12  # (topic, label) pairs of a result that can be remembered
    MADE_LABELS_MAX = 100000
    DENSE_MIN_CHILDREN = 4
    INLINE_SYMS = 3
    CP_LIMIT = 0x110000

cdef enum:
    CLS_SEP = 0
    CLS_TOKEN = 1
    CLS_SENTENCE = 2
    CLS_UNHANDLED = 3  # NUL: the Python engine tags the video

cdef enum:
    ENGINE_STATE_FORMAT = 1  # bump when Engine.state() changes shape

cdef enum:
    WIN_SENTENCE = -2
    WIN_CAPTION = -1


cdef bytes _dump(const void* buf, Py_ssize_t size):
    """The ``size`` bytes at ``buf`` as a bytes object (b"" when there is no buffer)."""
    if buf == NULL or size <= 0:
        return b""
    return (<const char*>buf)[:size]


cdef void* _undump(bytes data, Py_ssize_t expected) except NULL:
    """A new malloc'd buffer holding ``data``, which must be ``expected`` bytes long."""
    if len(data) != expected:
        raise ValueError(f"engine state: {len(data)} bytes where {expected} were expected")
    cdef void* buf = malloc(expected if expected > 0 else 1)
    if buf == NULL:
        raise MemoryError()
    if expected > 0:
        memcpy(buf, <const char*>data, expected)
    return buf


# ------------------------------------------------------------------------------------
# The fold table: code point -> its folded code points and their token classes.
# ------------------------------------------------------------------------------------

cdef int _grow_buffer(void** buf, size_t size) except -1:
    """``realloc`` *buf to ``size`` bytes; on failure *buf stays as it was and MemoryError is
    raised."""
    cdef void* grown = realloc(buf[0], size)
    if grown == NULL:
        raise MemoryError()
    buf[0] = grown
    return 0


cdef int32_t* _fold_at = NULL  # CP_LIMIT offsets into _pool, -1: not computed yet
cdef int32_t* _pool = NULL  # at an offset: n, then n entries (class << 21 | code point)
cdef Py_ssize_t _pool_len = 0
cdef Py_ssize_t _pool_cap = 0
cdef object _fold_entry = None


def _init_fold_table(fold_entry):
    """``fold_entry(cp)`` → [(code point, class), ...]: how one code point normalises."""
    global _fold_at, _fold_entry
    if _fold_at == NULL:
        _fold_at = <int32_t*> malloc(CP_LIMIT * sizeof(int32_t))
        if _fold_at == NULL:
            raise MemoryError()
        memset(_fold_at, 0xFF, CP_LIMIT * sizeof(int32_t))
    _fold_entry = fold_entry


cdef int32_t _fill(Py_UCS4 c) except -1:
    global _pool, _pool_len, _pool_cap
    entry = _fold_entry(<int>c)
    cdef Py_ssize_t n = len(entry)
    cdef Py_ssize_t need = _pool_len + n + 1
    cdef Py_ssize_t cap
    if need > _pool_cap:
        cap = max(need, _pool_cap * 2, 4096)
        _grow_buffer(<void**>&_pool, cap * sizeof(int32_t))
        _pool_cap = cap
    cdef int32_t off = <int32_t>_pool_len
    _pool[off] = <int32_t>n
    cdef Py_ssize_t k
    for k in range(n):
        cp, cls = entry[k]
        _pool[off + 1 + k] = (<int32_t>cls << 21) | <int32_t>cp
    _pool_len = need
    _fold_at[c] = off
    return off


# ------------------------------------------------------------------------------------
# Aho-Corasick over code points
# ------------------------------------------------------------------------------------

cdef struct Node:
    # nchild >= 0: ``child`` is the first child (the children of a node have consecutive
    # ids) and ``syms`` the symbols of the first ones (read with the node itself);
    # nchild == -1: ``child`` is the offset of the node's full row of transitions;
    # nchild <= -2: a tail — one key below: its -2 - nchild remaining symbols are at
    # ``child`` in the tail pool, and ``value`` is that key's.
    int32_t child
    int32_t value  # -1: no key ends here
    int16_t nchild
    uint16_t syms[INLINE_SYMS]


cdef class Trie:
    """A prefix tree of keys that start with a space: `add` keys with an int value,
    `build`, then `scan` (or `hits`).

    Built nodes are numbered breadth first, so the children of a node are consecutive
    and the shallow nodes every scan goes through share cache lines; a node with many
    children (the root, " ", " a", ...) gets a full row of transitions, and a node with
    one key below it stores the rest of that key as a string (most of a large lexicon's
    prefixes are such tails: they cost one comparison instead of a node per character).
    """

    cdef uint16_t* sym  # code point -> symbol (0: in no key)
    cdef int nsym
    cdef Py_ssize_t n, cap
    # build-time tree (insertion order)
    cdef int32_t* head
    cdef int32_t* sibling
    cdef int32_t* tvalue
    cdef uint16_t* tsym
    # built automaton (breadth-first order)
    cdef Node* nodes
    cdef uint16_t* insym  # the symbol that leads to each node
    cdef int32_t* rows
    cdef uint16_t* tails
    cdef Py_ssize_t n_built
    cdef Py_ssize_t n_rows, n_tails  # lengths of rows and tails
    cdef int32_t space  # the node of " " (every key starts with a space), -1: none
    cdef bint built

    def __cinit__(self):
        self.sym = <uint16_t*> malloc(CP_LIMIT * sizeof(uint16_t))
        if self.sym == NULL:
            raise MemoryError()
        memset(self.sym, 0, CP_LIMIT * sizeof(uint16_t))
        self.nsym = 1
        self.n = 0
        self.cap = 0
        self.head = self.sibling = self.tvalue = self.rows = NULL
        self.tsym = self.insym = self.tails = NULL
        self.n_built = 0
        self.n_rows = self.n_tails = 0
        self.nodes = NULL
        self.space = -1
        self.built = False
        self._grow(1024)
        self._new_node(0)

    def __dealloc__(self):
        free(self.sym)
        free(self.head)
        free(self.sibling)
        free(self.tvalue)
        free(self.tsym)
        free(self.nodes)
        free(self.insym)
        free(self.rows)
        free(self.tails)

    cdef int _grow(self, Py_ssize_t cap) except -1:
        _grow_buffer(<void**>&self.head, cap * sizeof(int32_t))
        _grow_buffer(<void**>&self.sibling, cap * sizeof(int32_t))
        _grow_buffer(<void**>&self.tvalue, cap * sizeof(int32_t))
        _grow_buffer(<void**>&self.tsym, cap * sizeof(uint16_t))
        self.cap = cap
        return 0

    cdef int32_t _new_node(self, uint16_t s) except -1:
        if self.n == self.cap:
            self._grow(self.cap * 2)
        cdef int32_t i = <int32_t>self.n
        self.head[i] = -1
        self.sibling[i] = -1
        self.tsym[i] = s
        self.tvalue[i] = -1
        self.n += 1
        return i

    def add(self, str key, int value):
        """Add ``key`` (starting with a space) with ``value`` ≥ 0 (a key added twice keeps
        the last value)."""
        if self.built:
            raise RuntimeError("the automaton is already built")
        if not key.startswith(" ") or len(key) < 2:
            raise ValueError(f"a key starts with a space and has a character after it: {key!r}")
        cdef int32_t node = 0, child
        cdef uint16_t s
        cdef Py_UCS4 c
        for c in key:
            s = self.sym[c]
            if s == 0:
                if self.nsym >= 65535:
                    raise ValueError("too many distinct characters in the keys")
                s = self.sym[c] = <uint16_t>self.nsym
                self.nsym += 1
            child = self.head[node]
            while child >= 0 and self.tsym[child] != s:
                child = self.sibling[child]
            if child < 0:
                child = self._new_node(s)
                self.sibling[child] = self.head[node]
                self.head[node] = child
            node = child
        self.tvalue[node] = value

    cdef inline int32_t _next(self, int32_t state, uint16_t s) noexcept nogil:
        """The child of ``state`` (not a tail) on symbol ``s``, or -1."""
        cdef Node* node = &self.nodes[state]
        cdef int32_t k, n = node.nchild
        if n < 0:
            return self.rows[node.child + s] if n == -1 else -1
        for k in range(n if n < INLINE_SYMS else INLINE_SYMS):
            if node.syms[k] == s:
                return node.child + k
        for k in range(node.child + INLINE_SYMS, node.child + n):
            if self.insym[k] == s:
                return k
        return -1

    def build(self):
        """Number the nodes breadth first, cut the tails, lay out the transitions."""
        cdef Py_ssize_t n = self.n, i, k, qt = 1, qh = 0, ndense = 0, ntail = 0, tlen
        cdef int32_t u, v, w, nchild
        cdef int32_t* order = <int32_t*> malloc(n * sizeof(int32_t))  # new id -> old id
        cdef int32_t* nkids = <int32_t*> malloc(n * sizeof(int32_t))
        cdef int32_t* below = <int32_t*> malloc(n * sizeof(int32_t))  # keys in a subtree
        cdef int32_t* parent = <int32_t*> malloc(n * sizeof(int32_t))
        self.nodes = <Node*> malloc(n * sizeof(Node))
        self.insym = <uint16_t*> malloc(n * sizeof(uint16_t))
        self.tails = <uint16_t*> malloc((n + 1) * sizeof(uint16_t))
        try:
            if (order == NULL or nkids == NULL or below == NULL or parent == NULL
                    or self.nodes == NULL or self.insym == NULL or self.tails == NULL):
                raise MemoryError()
            # keys below each node (children are created after their parent)
            for u in range(n):
                below[u] = 1 if self.tvalue[u] >= 0 else 0
                v = self.head[u]
                while v >= 0:
                    parent[v] = u
                    v = self.sibling[v]
            for u in range(n - 1, 0, -1):
                below[parent[u]] += below[u]
            order[0] = 0
            self.insym[0] = 0
            while qh < qt:  # breadth first: children get consecutive ids
                i = qh
                u = order[qh]
                qh += 1
                if below[u] == 1 and u != 0 and parent[u] != 0:  # a tail: its key's rest
                    tlen = 0
                    self.nodes[i].value = -1
                    self.nodes[i].child = <int32_t>ntail
                    w = u
                    while self.tvalue[w] < 0:
                        w = self.head[w]
                        self.tails[ntail + tlen] = self.tsym[w]
                        tlen += 1
                    if tlen > 30000:
                        raise ValueError("a key is too long")
                    self.nodes[i].value = self.tvalue[w]
                    self.nodes[i].nchild = <int16_t>(-2 - tlen)
                    ntail += tlen
                    nkids[i] = 0
                    continue
                nchild = 0
                v = self.head[u]
                self.nodes[i].child = <int32_t>qt
                while v >= 0:
                    order[qt] = v
                    self.insym[qt] = self.tsym[v]
                    qt += 1
                    nchild += 1
                    v = self.sibling[v]
                nkids[i] = nchild
                self.nodes[i].nchild = <int16_t>nchild if nchild <= DENSE_MIN_CHILDREN else -1
                self.nodes[i].value = self.tvalue[u]
                for k in range(INLINE_SYMS):
                    self.nodes[i].syms[k] = (
                        self.insym[self.nodes[i].child + k] if k < nchild else 0)
                if i == 0 or nchild > DENSE_MIN_CHILDREN:
                    ndense += 1
            self.n_built = qt
            self.n_tails = ntail
            self.n_rows = ndense * self.nsym + 1
            self.rows = <int32_t*> malloc((ndense * self.nsym + 1) * sizeof(int32_t))
            if self.rows == NULL:
                raise MemoryError()
            ndense = 0
            for i in range(qt):
                if i == 0 or self.nodes[i].nchild == -1:
                    for k in range(self.nsym):
                        self.rows[ndense + k] = -1
                    for k in range(self.nodes[i].child, self.nodes[i].child + nkids[i]):
                        self.rows[ndense + self.insym[k]] = <int32_t>k
                    self.nodes[i].child = <int32_t>ndense
                    self.nodes[i].nchild = -1
                    ndense += self.nsym
            self.space = self._next(0, self.sym[32])
        finally:
            free(order)
            free(nkids)
            free(below)
            free(parent)
        free(self.head)
        free(self.sibling)
        free(self.tvalue)
        free(self.tsym)
        self.head = self.sibling = self.tvalue = NULL
        self.tsym = NULL
        self.built = True

    def __len__(self):
        """The number of nodes (tails count as one)."""
        return self.n_built if self.built else self.n

    def state(self):
        """The built tree as plain data (see `Trie.from_state`)."""
        if not self.built:
            raise RuntimeError("only a built automaton has a state")
        return (
            self.nsym, self.n_built, self.n_rows, self.n_tails, self.space,
            _dump(self.sym, CP_LIMIT * sizeof(uint16_t)),
            _dump(self.nodes, self.n_built * sizeof(Node)),
            _dump(self.insym, self.n_built * sizeof(uint16_t)),
            _dump(self.rows, self.n_rows * sizeof(int32_t)),
            _dump(self.tails, (self.n_tails + 1) * sizeof(uint16_t)),
        )

    @staticmethod
    def from_state(state):
        """The built tree that `state()` described."""
        cdef Trie trie = Trie()
        nsym, n_built, n_rows, n_tails, space, sym, nodes, insym, rows, tails = state
        free(trie.head)
        free(trie.sibling)
        free(trie.tvalue)
        free(trie.tsym)
        trie.head = trie.sibling = trie.tvalue = NULL
        trie.tsym = NULL
        trie.n = trie.cap = 0
        free(trie.sym)
        trie.sym = NULL
        trie.sym = <uint16_t*> _undump(sym, CP_LIMIT * sizeof(uint16_t))
        trie.nsym = nsym
        trie.n_built = n_built
        trie.n_rows = n_rows
        trie.n_tails = n_tails
        trie.space = space
        trie.nodes = <Node*> _undump(nodes, n_built * sizeof(Node))
        trie.insym = <uint16_t*> _undump(insym, n_built * sizeof(uint16_t))
        trie.rows = <int32_t*> _undump(rows, n_rows * sizeof(int32_t))
        trie.tails = <uint16_t*> _undump(tails, (n_tails + 1) * sizeof(uint16_t))
        trie.built = True
        return trie

    def hits(self, str text):
        """[(end index, value), ...] of the keys in ``text``, in pyahocorasick's order."""
        if not self.built:
            raise RuntimeError("build() the automaton first")
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0, cap = n * 4 + 16
        cdef Py_UCS4* buf = <Py_UCS4*> malloc((n + 1) * sizeof(Py_UCS4))
        cdef int32_t* ends = <int32_t*> malloc(cap * sizeof(int32_t))
        cdef int32_t* vals = <int32_t*> malloc(cap * sizeof(int32_t))
        cdef Py_UCS4 c
        cdef int count
        try:
            if buf == NULL or ends == NULL or vals == NULL:
                raise MemoryError()
            for c in text:
                buf[i] = c
                i += 1
            count = self.scan(buf, 0, <int>n, ends, vals, <int>cap)
            while count < 0:
                cap *= 4
                free(ends)
                free(vals)
                ends = <int32_t*> malloc(cap * sizeof(int32_t))
                vals = <int32_t*> malloc(cap * sizeof(int32_t))
                if ends == NULL or vals == NULL:
                    raise MemoryError()
                count = self.scan(buf, 0, <int>n, ends, vals, <int>cap)
            return [(ends[i], vals[i]) for i in range(count)]
        finally:
            free(buf)
            free(ends)
            free(vals)

    cdef int scan(self, const Py_UCS4* text, int lo, int hi, int32_t* ends, int32_t* vals,
                  int cap) noexcept nogil:
        """Hits in text[lo:hi] as (end index, value) rows, by end then longest first (the
        order of pyahocorasick's `iter`); their number, or -1 when there are more than
        ``cap``.

        Every key starts with a space and the text's spaces are its token boundaries, so
        instead of following failure links, the tree is walked from each space for as
        long as the text follows it (most walks stop within a few characters); the rows
        are then put in end order (stable: for one end, the earlier start is longer).
        """
        cdef int p, i, j, t, tlen, end, count = 0
        cdef int32_t state
        cdef Node* node
        cdef int32_t space = self.space
        cdef uint16_t s
        cdef Py_UCS4 c
        if space < 0:
            return 0
        for p in range(lo, hi):
            if text[p] != 32:
                continue
            state = space
            for i in range(p + 1, hi):
                c = text[i]
                s = self.sym[c] if c < CP_LIMIT else 0
                if s == 0:
                    break
                state = self._next(state, s)
                if state < 0:
                    break
                node = &self.nodes[state]
                end = i
                if node.nchild <= -2:  # a tail: the text must go on with its symbols
                    tlen = -2 - node.nchild
                    if i + tlen >= hi:
                        break
                    for t in range(tlen):
                        c = text[i + 1 + t]
                        if c >= CP_LIMIT or self.sym[c] != self.tails[node.child + t]:
                            break
                    else:
                        end = i + tlen
                    if end == i and tlen > 0:
                        break
                if node.value >= 0:
                    if count == cap:
                        return -1
                    # insertion by end; stable, so equal ends keep the longer key first
                    j = count
                    while j > 0 and ends[j - 1] > end:
                        ends[j] = ends[j - 1]
                        vals[j] = vals[j - 1]
                        j -= 1
                    ends[j] = end
                    vals[j] = node.value
                    count += 1
                if node.nchild <= -2:
                    break
        return count


# ------------------------------------------------------------------------------------
# The engine
# ------------------------------------------------------------------------------------

cdef struct Scratch:
    Py_UCS4* text
    Py_ssize_t text_cap
    Py_UCS4* src  # the caption being normalised, 4 bytes per code point
    Py_ssize_t src_cap
    bint has_hash  # the caption holds '#' or '＃'
    int32_t hit_end[MAX_ROWS]
    int32_t hit_key[MAX_ROWS]
    int32_t pend_s[MAX_ROWS]
    int32_t pend_e[MAX_ROWS]
    int32_t pend_k[MAX_ROWS]
    int32_t f_topic[MAX_ROWS]
    int32_t f_s[MAX_ROWS]
    int32_t f_e[MAX_ROWS]
    void* f_label[MAX_ROWS]
    int32_t c_s[MAX_ROWS]
    int32_t c_e[MAX_ROWS]
    int32_t c_key[MAX_ROWS]
    uint64_t seen[MASK_WORDS]
    # what the hashtags give: (topic, label) rows that fire whatever the caption says,
    # and (rule, label) rows of the conditional rules that hit inside them
    int n_pairs
    int32_t pair_topic[MAX_ROWS]
    void* pair_label[MAX_ROWS]
    int n_zone_rules
    int32_t zr_rule[MAX_ROWS]
    void* zr_label[MAX_ROWS]
    # the video's distinct hashtags and their digests (borrowed: the digests dict is only
    # emptied before a video)
    int n_tags
    void* tags[MAX_TAGS]
    int n_digests
    void* digests[MAX_TAGS]


cdef struct CachedResult:
    uint64_t h
    int n
    unsigned char nlabs[16]
    void* labels[SIG_MAX]  # strong references
    void* result  # a strong reference, NULL: empty slot


cdef inline bint _disjoint(const uint64_t* a, const uint64_t* b) noexcept nogil:
    cdef int k
    for k in range(MASK_WORDS):
        if a[k] & b[k]:
            return False
    return True


cdef object _UNKNOWN = object()


cdef inline int _fire(Scratch* sc, int nf, int topic, int start, int end, void* label) noexcept:
    """Add a fired row (start -1: a hashtag names the term); the new number of rows, or -1
    when the rows are full."""
    if nf < 0 or nf == MAX_ROWS:
        return -1
    sc.f_topic[nf] = topic
    sc.f_s[nf] = start
    sc.f_e[nf] = end
    sc.f_label[nf] = label
    return nf + 1


cdef inline int _add_pair(int32_t* ids, void** labels, int lo, int n, int id_, void* label) noexcept:
    """Add (id, label) to rows [lo, n) unless it is there; the new end, or -1 when full."""
    cdef int j
    for j in range(lo, n):
        if ids[j] == id_ and labels[j] == label:
            return n
    if n == MAX_ROWS:
        return -1
    ids[n] = id_
    labels[n] = label
    return n + 1


cdef list _hashtags_in(str text, const Py_UCS4* src, Py_ssize_t n):
    """``re.findall(r"[#＃]([^\W_]\w*)", text)`` for ``text`` whose ``n`` code points are
    ``src``: the hashtags written in a caption (the regex's word characters are
    `str.isalnum` ones, and "_")."""
    cdef list out = []
    cdef Py_ssize_t i = 0, j
    cdef Py_UCS4 c
    while i < n - 1:
        c = src[i]
        if (c == 35 or c == 0xFF03) and Py_UNICODE_ISALNUM(src[i + 1]):
            j = i + 2
            while j < n and (Py_UNICODE_ISALNUM(src[j]) or src[j] == 95):
                j += 1
            out.append(text[i + 1:j])
            i = j
        else:
            i += 1
    return out


def hashtags_in(str text):
    """`_hashtags_in` (for tests)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef Py_UCS4* src = PyUnicode_AsUCS4Copy(text)
    if src == NULL:
        raise MemoryError()
    try:
        return _hashtags_in(text, src, n)
    finally:
        PyMem_Free(src)


cdef Scratch* _new_scratch() except NULL:
    """Working memory for one call (calls do not share it: a callback into Python may let
    another thread tag meanwhile)."""
    cdef Scratch* sc = <Scratch*> malloc(sizeof(Scratch))
    if sc == NULL:
        raise MemoryError()
    sc.text_cap = 1024
    sc.text = <Py_UCS4*> malloc(sc.text_cap * sizeof(Py_UCS4))
    sc.src_cap = 1024
    sc.src = <Py_UCS4*> malloc(sc.src_cap * sizeof(Py_UCS4))
    if sc.text == NULL or sc.src == NULL:
        _free_scratch(sc)
        raise MemoryError()
    return sc


cdef void _free_scratch(Scratch* sc) noexcept:
    free(sc.text)
    free(sc.src)
    free(sc)


cdef int _reserve(Scratch* sc, Py_ssize_t need) except -1:
    """Room for ``need`` code points in sc.text."""
    if need > sc.text_cap:
        _grow_buffer(<void**>&sc.text, need * 2 * sizeof(Py_UCS4))
        sc.text_cap = need * 2
    return 0


cdef class TagDigest:
    """One hashtag as the engine uses it (computed once per hashtag string): its compact
    key ("" for a generic hashtag), its normalised and segmented text, its label
    ("#QuitMyJob"), the topic ids the lexicon gives the hashtag itself, the topic ids of
    the unconditional terms in its text, the rule ids of the conditional ones, and
    whether it can give a hit at all."""

    cdef readonly str key
    cdef readonly str text
    cdef readonly str label
    cdef readonly tuple direct
    cdef readonly tuple topics
    cdef readonly tuple rules
    cdef readonly bint live

    def __init__(self, str key, str text, str label, tuple direct, tuple topics, tuple rules):
        self.key = key
        self.text = text
        self.label = label
        self.direct = direct
        self.topics = topics
        self.rules = rules
        self.live = bool(direct) or bool(topics) or bool(rules)


cdef class Engine:
    """Tags a batch of (caption, hashtags, lang) items on C data; see the module doc."""

    cdef readonly Trie terms
    cdef readonly Trie contexts
    cdef int nkeys, nrules, nctx
    # term keys
    cdef int32_t* k_len
    cdef int32_t* k_endings  # -1: none, else index into endings
    cdef int32_t* k_hit_first  # hits of key k: [k_hit_first[k], k_hit_first[k + 1])
    cdef int32_t* hit_topic
    cdef int32_t* hit_label
    cdef int32_t* k_rule_first
    cdef int32_t* rule_of
    # rules
    cdef int32_t* r_topic
    cdef int32_t* r_label
    cdef int32_t* r_window
    cdef unsigned char* r_flags  # 1 block, 2 need, 4 also_need, 8 not_langs
    cdef uint64_t* r_masks  # 3 masks per rule: block, need, also_need
    # context keys
    cdef int32_t* c_len
    cdef int32_t* c_endings
    cdef uint64_t* c_mask
    # Python objects
    cdef list labels
    cdef list endings
    cdef list not_langs
    cdef tuple topics
    cdef object empty
    cdef object result_type
    cdef object set_topics  # the slots' setters: a frozen dataclass's __init__ costs more
    cdef object set_matched
    cdef object primary
    cdef object guess_lang
    cdef object digest_of
    cdef dict digests
    cdef Py_ssize_t digests_max
    cdef public dict rule_ids
    cdef public dict topic_ids
    cdef Py_UCS4 sentence[MAX_SENTENCE_CHARS]  # normalise.SENTENCE_CHARS
    cdef int n_sentence
    cdef long n_hashtag_lookups, n_hashtag_hits, n_results, n_result_hits
    cdef CachedResult* results
    cdef dict made_labels  # "term (if context)" labels, interned
    cdef readonly long n_fallbacks

    def __cinit__(self):
        self.k_len = self.k_endings = self.k_hit_first = self.hit_topic = NULL
        self.hit_label = self.k_rule_first = self.rule_of = NULL
        self.r_topic = self.r_label = self.r_window = NULL
        self.r_flags = NULL
        self.r_masks = NULL
        self.c_len = self.c_endings = NULL
        self.c_mask = NULL
        self.results = <CachedResult*> calloc(RESULT_SLOTS, sizeof(CachedResult))
        if self.results == NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef int i
        if self.results != NULL:
            for i in range(RESULT_SLOTS):
                _forget(&self.results[i])
            free(self.results)
        free(self.k_len)
        free(self.k_endings)
        free(self.k_hit_first)
        free(self.hit_topic)
        free(self.hit_label)
        free(self.k_rule_first)
        free(self.rule_of)
        free(self.r_topic)
        free(self.r_label)
        free(self.r_window)
        free(self.r_flags)
        free(self.r_masks)
        free(self.c_len)
        free(self.c_endings)
        free(self.c_mask)

    def __init__(self, term_items, context_items, topics, *, fold_entry, sentence_chars, empty,
                 result_type, primary, guess_lang, digest_of, digests_max, state=None):
        """``term_items``: (key, (key length, hits, rules, endings)) of the term automaton;
        ``context_items``: (key, (key length, context set ids, endings)); ``topics``: the
        topic ids in sorted order. ``digest_of(tag)`` is a hashtag's `TagDigest`
        (remembered, at most ``digests_max`` of them). ``state``: what `state()` returned
        for the same items, instead of building from the items (which are then ignored)."""
        _init_fold_table(fold_entry)
        if len(sentence_chars) > MAX_SENTENCE_CHARS:
            raise ValueError(f"at most {MAX_SENTENCE_CHARS} sentence characters")
        self.n_sentence = len(sentence_chars)
        for index, ch in enumerate(sentence_chars):
            self.sentence[index] = ord(ch)
        self.topics = tuple(topics)
        if not 0 < len(self.topics) <= 16:
            raise ValueError("the engine handles 1 to 16 topics")
        self.topic_ids = {t: i for i, t in enumerate(self.topics)}
        self.empty = empty
        self.result_type = result_type
        self.set_topics = self.set_matched = None
        topics_slot = getattr(result_type, "topics", None)
        matched_slot = getattr(result_type, "matched", None)
        if hasattr(topics_slot, "__set__") and hasattr(matched_slot, "__set__"):
            self.set_topics = topics_slot.__set__
            self.set_matched = matched_slot.__set__
        self.primary = primary
        self.guess_lang = guess_lang
        self.digest_of = digest_of
        self.digests = {}
        self.digests_max = digests_max
        self.n_hashtag_lookups = self.n_hashtag_hits = self.n_fallbacks = 0
        self.n_results = self.n_result_hits = 0
        self.made_labels = {}
        self.labels = []
        self.endings = []
        self.not_langs = []
        self.rule_ids = {}
        if state is not None:
            self._load(state)
            return
        label_ids = {}
        ending_ids = {}
        cdef list items = list(term_items)
        cdef list ctx = list(context_items)
        self.nkeys = len(items)
        self.nctx = len(ctx)
        rules = []
        nhits = 0
        nrefs = 0
        for key, value in items:
            nhits += len(value[1])
            nrefs += len(value[2])
            for rule in value[2]:
                if rule not in self.rule_ids:
                    self.rule_ids[rule] = len(rules)
                    rules.append(rule)
        self.nrules = len(rules)
        self.k_len = <int32_t*> malloc((self.nkeys + 1) * sizeof(int32_t))
        self.k_endings = <int32_t*> malloc((self.nkeys + 1) * sizeof(int32_t))
        self.k_hit_first = <int32_t*> malloc((self.nkeys + 1) * sizeof(int32_t))
        self.k_rule_first = <int32_t*> malloc((self.nkeys + 1) * sizeof(int32_t))
        self.hit_topic = <int32_t*> malloc((nhits + 1) * sizeof(int32_t))
        self.hit_label = <int32_t*> malloc((nhits + 1) * sizeof(int32_t))
        self.rule_of = <int32_t*> malloc((nrefs + 1) * sizeof(int32_t))
        self.r_topic = <int32_t*> malloc((self.nrules + 1) * sizeof(int32_t))
        self.r_label = <int32_t*> malloc((self.nrules + 1) * sizeof(int32_t))
        self.r_window = <int32_t*> malloc((self.nrules + 1) * sizeof(int32_t))
        self.r_flags = <unsigned char*> malloc((self.nrules + 1) * sizeof(unsigned char))
        self.r_masks = <uint64_t*> malloc((self.nrules + 1) * 3 * MASK_WORDS * sizeof(uint64_t))
        self.c_len = <int32_t*> malloc((self.nctx + 1) * sizeof(int32_t))
        self.c_endings = <int32_t*> malloc((self.nctx + 1) * sizeof(int32_t))
        self.c_mask = <uint64_t*> malloc((self.nctx + 1) * MASK_WORDS * sizeof(uint64_t))
        if (self.k_len == NULL or self.k_endings == NULL or self.k_hit_first == NULL
                or self.k_rule_first == NULL or self.hit_topic == NULL or self.hit_label == NULL
                or self.rule_of == NULL or self.r_topic == NULL or self.r_label == NULL
                or self.r_window == NULL or self.r_flags == NULL or self.r_masks == NULL
                or self.c_len == NULL or self.c_endings == NULL or self.c_mask == NULL):
            raise MemoryError()
        memset(self.r_masks, 0, (self.nrules + 1) * 3 * MASK_WORDS * sizeof(uint64_t))
        memset(self.c_mask, 0, (self.nctx + 1) * MASK_WORDS * sizeof(uint64_t))

        def label_id(label):
            i = label_ids.get(label)
            if i is None:
                i = label_ids[label] = len(self.labels)
                self.labels.append(label)
            return i

        def ending_id(endings):
            if endings is None:
                return -1
            i = ending_ids.get(endings)
            if i is None:
                i = ending_ids[endings] = len(self.endings)
                self.endings.append(endings)
            return i

        cdef int r, k, h = 0, q = 0, flags
        for r, rule in enumerate(rules):
            self.r_topic[r] = self.topic_ids[rule.topic]
            self.r_label[r] = label_id(rule.label)
            self.r_window[r] = WIN_SENTENCE if rule.window is None else rule.window
            flags = 0
            for slot, ids in enumerate((rule.block, rule.need, rule.also_need)):
                if ids is not None:
                    flags |= 1 << slot
                    self._set_mask(&self.r_masks[(r * 3 + slot) * MASK_WORDS], ids)
            if rule.not_langs is not None:
                flags |= 8
            self.r_flags[r] = flags
            self.not_langs.append(rule.not_langs)
        self.terms = Trie()
        for k, (key, value) in enumerate(items):
            klen, hits, key_rules, endings = value
            self.k_len[k] = klen
            self.k_endings[k] = ending_id(endings)
            self.k_hit_first[k] = h
            for topic, label in hits:
                self.hit_topic[h] = self.topic_ids[topic]
                self.hit_label[h] = label_id(label)
                h += 1
            self.k_rule_first[k] = q
            for rule in key_rules:
                self.rule_of[q] = self.rule_ids[rule]
                q += 1
            self.terms.add(key, k)
        self.k_hit_first[self.nkeys] = h
        self.k_rule_first[self.nkeys] = q
        self.terms.build()
        self.contexts = Trie()
        for k, (key, value) in enumerate(ctx):
            klen, ids, endings = value
            self.c_len[k] = klen
            self.c_endings[k] = ending_id(endings)
            self._set_mask(&self.c_mask[k * MASK_WORDS], ids)
            self.contexts.add(key, k)
        self.contexts.build()

    def state(self):
        """Everything `__init__` built from the items, as plain data (bytes, lists, dicts)
        that pickles fast; `Engine(..., state=...)` makes the same engine from it."""
        cdef Py_ssize_t i32 = sizeof(int32_t)
        cdef Py_ssize_t nk = self.nkeys + 1, nr = self.nrules + 1, nc = self.nctx + 1
        cdef Py_ssize_t nhits = self.k_hit_first[self.nkeys] + 1
        cdef Py_ssize_t nrefs = self.k_rule_first[self.nkeys] + 1
        return {
            "format": ENGINE_STATE_FORMAT,
            "topics": self.topics,
            "sizes": (self.nkeys, self.nrules, self.nctx),
            "keys": [_dump(self.k_len, nk * i32), _dump(self.k_endings, nk * i32),
                     _dump(self.k_hit_first, nk * i32), _dump(self.k_rule_first, nk * i32)],
            "hits": [_dump(self.hit_topic, nhits * i32), _dump(self.hit_label, nhits * i32)],
            "rule_of": _dump(self.rule_of, nrefs * i32),
            "rules": [_dump(self.r_topic, nr * i32), _dump(self.r_label, nr * i32),
                      _dump(self.r_window, nr * i32)],
            "r_flags": _dump(self.r_flags, nr),
            "r_masks": _dump(self.r_masks, nr * 3 * MASK_WORDS * sizeof(uint64_t)),
            "contexts": [_dump(self.c_len, nc * i32), _dump(self.c_endings, nc * i32)],
            "c_mask": _dump(self.c_mask, nc * MASK_WORDS * sizeof(uint64_t)),
            "labels": self.labels,
            "endings": self.endings,
            "not_langs": self.not_langs,
            "rule_ids": self.rule_ids,
            "terms": self.terms.state(),
            "context_trie": self.contexts.state(),
        }

    cdef int _load(self, dict state) except -1:
        if state.get("format") != ENGINE_STATE_FORMAT or tuple(state["topics"]) != self.topics:
            raise ValueError("engine state of another format or taxonomy")
        self.nkeys, self.nrules, self.nctx = state["sizes"]
        cdef Py_ssize_t i32 = sizeof(int32_t)
        cdef Py_ssize_t nk = self.nkeys + 1, nr = self.nrules + 1, nc = self.nctx + 1
        keys = state["keys"]
        self.k_len = <int32_t*> _undump(keys[0], nk * i32)
        self.k_endings = <int32_t*> _undump(keys[1], nk * i32)
        self.k_hit_first = <int32_t*> _undump(keys[2], nk * i32)
        self.k_rule_first = <int32_t*> _undump(keys[3], nk * i32)
        cdef Py_ssize_t nhits = self.k_hit_first[self.nkeys] + 1
        cdef Py_ssize_t nrefs = self.k_rule_first[self.nkeys] + 1
        self.hit_topic = <int32_t*> _undump(state["hits"][0], nhits * i32)
        self.hit_label = <int32_t*> _undump(state["hits"][1], nhits * i32)
        self.rule_of = <int32_t*> _undump(state["rule_of"], nrefs * i32)
        rules = state["rules"]
        self.r_topic = <int32_t*> _undump(rules[0], nr * i32)
        self.r_label = <int32_t*> _undump(rules[1], nr * i32)
        self.r_window = <int32_t*> _undump(rules[2], nr * i32)
        self.r_flags = <unsigned char*> _undump(state["r_flags"], nr)
        self.r_masks = <uint64_t*> _undump(
            state["r_masks"], nr * 3 * MASK_WORDS * sizeof(uint64_t))
        self.c_len = <int32_t*> _undump(state["contexts"][0], nc * i32)
        self.c_endings = <int32_t*> _undump(state["contexts"][1], nc * i32)
        self.c_mask = <uint64_t*> _undump(state["c_mask"], nc * MASK_WORDS * sizeof(uint64_t))
        self.labels = list(state["labels"])
        self.endings = list(state["endings"])
        self.not_langs = list(state["not_langs"])
        self.rule_ids = dict(state["rule_ids"])
        self.terms = Trie.from_state(state["terms"])
        self.contexts = Trie.from_state(state["context_trie"])
        return 0

    cdef int _set_mask(self, uint64_t* mask, ids) except -1:
        for i in ids:
            if not 0 <= i < MAX_CONTEXT_SETS:
                raise ValueError(f"context set id {i} is beyond {MAX_CONTEXT_SETS}")
            mask[i >> 6] |= (<uint64_t>1) << (i & 63)
        return 0

    def clear(self):
        """Forget the hashtag digests."""
        self.digests.clear()
        self.made_labels.clear()
        cdef int i
        for i in range(RESULT_SLOTS):
            _forget(&self.results[i])
        self.n_hashtag_lookups = self.n_hashtag_hits = self.n_fallbacks = 0
        self.n_results = self.n_result_hits = 0

    @property
    def stats(self):
        """Counters: hashtag digest lookups and hits, videos handed to the Python engine."""
        return {"hashtag_lookups": self.n_hashtag_lookups, "hashtag_hits": self.n_hashtag_hits,
                "result_lookups": self.n_results, "result_hits": self.n_result_hits,
                "python_fallbacks": self.n_fallbacks}

    def normalise(self, str caption):
        """The caption as the engine scans it (`Tagger._normalise_captions`: normalised,
        padded with spaces), or None when the Python engine must tag it (for tests)."""
        cdef Scratch* sc = _new_scratch()
        cdef Py_ssize_t n
        try:
            n = self._normalise(sc, caption)
            return None if n < 0 else self._text(sc, <int>n)
        finally:
            _free_scratch(sc)

    # --------------------------------------------------------------------------------
    def tag_batch(self, items):
        """The `TagResult` of each (caption, hashtags, lang) item, or None for an item
        that the Python engine must tag (see the module doc)."""
        cdef Scratch* sc = _new_scratch()
        cdef list out = []
        try:
            for item in items:
                caption, tags, lang = item
                if not caption and not tags:  # stats events: one test
                    out.append(self.empty)
                else:
                    out.append(self._tag_one(sc, caption, tags, lang))
        finally:
            _free_scratch(sc)
        return out

    cdef Py_ssize_t _normalise(self, Scratch* sc, str caption) except -2:
        """The caption's normalised form, padded with spaces, into sc.text (and whether it
        holds a '#' into sc.has_hash); -1: it holds a code point this engine does not
        handle (NUL). See `normalise.fold_code_point` for what each code point becomes."""
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(caption), i, pos = 1
        cdef int32_t off, e, cls, k, m
        cdef bint in_token = False, has_hash = False
        cdef Py_UCS4 c
        cdef Py_UCS4* src
        cdef Py_UCS4* text
        if n + 1 > sc.src_cap:  # the caption's code points, widened to 4 bytes
            _grow_buffer(<void**>&sc.src, (n + 1) * 2 * sizeof(Py_UCS4))
            sc.src_cap = (n + 1) * 2
        src = PyUnicode_AsUCS4(caption, sc.src, sc.src_cap, 0)
        if src == NULL:
            raise MemoryError()
        _reserve(sc, n * 2 + 8)
        text = sc.text
        text[0] = 32
        for i in range(n):
            c = src[i]
            off = _fold_at[c]
            if off < 0:
                off = _fill(c)
            m = _pool[off]
            if pos + 2 * m + 4 > sc.text_cap:
                _reserve(sc, pos + 2 * m + 4 + n)
                text = sc.text
            if c == 35 or c == 0xFF03:  # '#', '＃': the caption may name hashtags
                has_hash = True
            for k in range(1, m + 1):
                e = _pool[off + k]
                cls = e >> 21
                if cls == CLS_TOKEN:
                    text[pos] = e & 0x1FFFFF
                    pos += 1
                    in_token = True
                elif cls == CLS_SEP:
                    if in_token:
                        text[pos] = 32
                        pos += 1
                        in_token = False
                elif cls == CLS_SENTENCE:
                    if in_token:
                        text[pos] = 32
                        pos += 1
                    text[pos] = e & 0x1FFFFF
                    text[pos + 1] = 32
                    pos += 2
                    in_token = False
                else:
                    return -1
        if in_token:
            text[pos] = 32
            pos += 1
        sc.has_hash = has_hash
        return pos

    cdef object _tag_one(self, Scratch* sc, caption, tags, lang):
        if not caption and not tags:
            return self.empty
        if type(caption) is not str:  # the Python engine says what is wrong with it
            return self._overflow()
        cdef Py_ssize_t cap_len = self._normalise(sc, <str>caption)
        if cap_len < 0:
            return self._overflow()
        cdef int nhits = self.terms.scan(sc.text, 0, <int>cap_len, sc.hit_end, sc.hit_key,
                                         MAX_ROWS)
        if nhits < 0:
            return self._overflow()
        if sc.has_hash:
            found = _hashtags_in(<str>caption, sc.src, PyUnicode_GET_LENGTH(caption))
            if found:
                tags = [*tags, *found]
        if not tags:
            if nhits == 0:
                return self.empty
            sc.n_pairs = sc.n_zone_rules = 0
            return self._match(sc, <int>cap_len, <int>cap_len, nhits, lang)
        if not self._digests(sc, tags):
            return self._overflow()
        cdef int i
        if nhits == 0:
            for i in range(sc.n_digests):
                if (<TagDigest>sc.digests[i]).live:
                    break
            else:
                return self.empty  # no term anywhere in this video
        cdef Py_ssize_t total = self._zone(sc, cap_len)
        if total < 0:
            return self._overflow()
        if nhits == 0 and sc.n_pairs == 0 and sc.n_zone_rules == 0:
            return self.empty
        return self._match(sc, <int>cap_len, <int>total, nhits, lang)

    cdef bint _digests(self, Scratch* sc, tags) except -1:
        """The digests of the video's distinct hashtags that have a key, in order, into
        ``sc``; False: more than MAX_TAGS hashtags."""
        cdef int i
        cdef TagDigest d
        sc.n_tags = sc.n_digests = 0
        if len(self.digests) >= self.digests_max:
            self.digests.clear()  # before the video: its digests stay alive while it is tagged
        for tag in tags:
            for i in range(sc.n_tags):
                if sc.tags[i] == <void*>tag or <object>sc.tags[i] == tag:
                    break
            else:
                if sc.n_tags == MAX_TAGS:
                    return False
                sc.tags[sc.n_tags] = <void*>tag
                sc.n_tags += 1
                self.n_hashtag_lookups += 1
                found = self.digests.get(tag)
                if found is None:
                    found = self.digest_of(tag)
                    self.digests[tag] = found
                else:
                    self.n_hashtag_hits += 1
                d = <TagDigest>found
                if d.key:
                    sc.digests[sc.n_digests] = <void*>d
                    sc.n_digests += 1
        return True

    cdef Py_ssize_t _zone(self, Scratch* sc, Py_ssize_t cap_len) except -2:
        """Assemble what the video's hashtags give into ``sc`` (as `Tagger._zone_entry`:
        hashtags with one key count once under the first one's label, a text already in
        the zone is not repeated), and append their texts to the caption:
        "\x1d text . text ". The text's new length; -1: beyond the fixed limits."""
        cdef void* keys[MAX_TAGS]
        cdef void* labels[MAX_TAGS]
        cdef void* parts[MAX_TAGS]
        cdef void* part_labels[MAX_TAGS]
        cdef int nkeys = 0, nparts = 0, n = 0, ndirect, nr = 0, i, j, t, r
        cdef Py_ssize_t total = cap_len, size
        cdef TagDigest d
        cdef void* label
        cdef Py_UCS4 c
        for i in range(sc.n_digests):  # the direct pairs first, under each key's first label
            d = <TagDigest>sc.digests[i]
            for j in range(nkeys):
                if <object>keys[j] == d.key:
                    break
            else:
                keys[nkeys] = <void*>d.key
                labels[nkeys] = <void*>d.label
                nkeys += 1
                for t in d.direct:  # kept as they come (`_zone_entry`'s `direct`)
                    if n == MAX_ROWS:
                        return -1
                    sc.pair_topic[n] = t
                    sc.pair_label[n] = <void*>d.label
                    n += 1
        ndirect = n
        for i in range(sc.n_digests):
            d = <TagDigest>sc.digests[i]
            if not d.text:
                continue
            for j in range(nparts):
                if <object>parts[j] == d.text:
                    break
            else:
                label = NULL
                for j in range(nkeys):
                    if <object>keys[j] == d.key:
                        label = labels[j]
                        break
                parts[nparts] = <void*>d.text
                nparts += 1
                for t in d.topics:
                    n = _add_pair(sc.pair_topic, sc.pair_label, ndirect, n, t, label)
                    if n < 0:
                        return -1
                for r in d.rules:
                    nr = _add_pair(sc.zr_rule, sc.zr_label, 0, nr, r, label)
                    if nr < 0:
                        return -1
        sc.n_pairs = n
        sc.n_zone_rules = nr
        if nparts == 0:
            return total
        size = 2 + 1
        for i in range(nparts):
            size += PyUnicode_GET_LENGTH(<str>parts[i]) + (3 if i else 0)
        _reserve(sc, cap_len + size + 1)
        sc.text[total] = 0x1D
        sc.text[total + 1] = 32
        total += 2
        for i in range(nparts):
            if i:
                sc.text[total] = 32
                sc.text[total + 1] = 46  # "."
                sc.text[total + 2] = 32
                total += 3
            for c in <str>parts[i]:
                sc.text[total] = c
                total += 1
        sc.text[total] = 32
        return total + 1

    cdef inline int _find_space(self, Scratch* sc, int i, int total) noexcept:
        while i < total and sc.text[i] != 32:
            i += 1
        return i if i < total else -1

    cdef bint _ending_ok(self, Scratch* sc, int endings, int end, int total, int* nxt) except -1:
        """Does the word that a suffix key ends in continue with one of its endings?
        (``text[end + 1 : text.find(" ", end)] in endings``, as the Python engine.)"""
        cdef int j = self._find_space(sc, end, total)
        nxt[0] = j
        cdef int stop = j if j >= 0 else total - 1
        rest = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, &sc.text[end + 1],
                                         max(stop - end - 1, 0))
        return rest in self.endings[endings]

    cdef object _match(self, Scratch* sc, int zone_at, int total, int nhits, lang):
        """The result of a video from its caption's hits and its hashtags' rows (``sc``):
        `Tagger._match`."""
        cdef int h, k, j, start, end, nf = 0, npend = 0, nxt
        cdef list keep = None  # the labels made for this video (kept alive)
        for h in range(nhits):
            k = sc.hit_key[h]
            end = sc.hit_end[h]
            start = end - self.k_len[k] + 1
            if self.k_endings[k] >= 0:
                if not self._ending_ok(sc, self.k_endings[k], end, total, &nxt):
                    continue
                end = nxt
            for j in range(self.k_hit_first[k], self.k_hit_first[k + 1]):
                nf = _fire(sc, nf, self.hit_topic[j], start, end,
                           <void*>self.labels[self.hit_label[j]])
            if self.k_rule_first[k] < self.k_rule_first[k + 1]:
                sc.pend_s[npend] = start
                sc.pend_e[npend] = end
                sc.pend_k[npend] = k
                npend += 1
        if nf >= 0 and (npend or sc.n_zone_rules):
            keep = []
            nf = self._conditional(sc, zone_at, total, npend, lang, nf, keep)
            if nf < 0:
                return self._overflow()
        for j in range(sc.n_pairs):
            nf = _fire(sc, nf, sc.pair_topic[j], -1, -1, sc.pair_label[j])
        if nf < 0:
            return self._overflow()
        if nf == 0:
            return self.empty
        return self._result(sc, nf)

    cdef object _overflow(self):
        """Count a video handed to the Python engine (beyond this engine's limits)."""
        self.n_fallbacks += 1
        return None

    cdef int _contexts(self, Scratch* sc, int total) except -2:
        """Scan the context automaton over the whole text into sc.c_*; -1: too many."""
        cdef int n = self.contexts.scan(sc.text, 0, total, sc.c_e, sc.c_key, MAX_ROWS)
        cdef int i, kept = 0, k, end, nxt, w
        if n < 0:
            return -1
        for w in range(MASK_WORDS):
            sc.seen[w] = 0
        for i in range(n):
            k = sc.c_key[i]
            end = sc.c_e[i]
            if self.c_endings[k] >= 0:
                if not self._ending_ok(sc, self.c_endings[k], end, total, &nxt):
                    continue
                end = nxt
            sc.c_s[kept] = sc.c_e[i] - self.c_len[k] + 1
            sc.c_e[kept] = end
            sc.c_key[kept] = k
            kept += 1
            for w in range(MASK_WORDS):
                sc.seen[w] |= self.c_mask[k * MASK_WORDS + w]
        return kept

    cdef inline bint _is_sentence(self, Py_UCS4 c) noexcept:
        cdef int k
        for k in range(self.n_sentence):
            if self.sentence[k] == c:
                return True
        return False

    cdef bint _near(self, Scratch* sc, int zone_at, int s, int e, int cs, int ce, int window,
                    bint blocking) noexcept:
        cdef int lo, hi, i, spaces = 0
        if window == WIN_CAPTION or s > zone_at:
            return True
        if cs > zone_at:
            return blocking or window == WIN_SENTENCE or window >= 6
        if cs >= e:
            lo = e
            hi = cs
        elif s >= ce:
            lo = ce
            hi = s
        else:
            return blocking
        for i in range(lo, hi):
            if sc.text[i] == 32:
                spaces += 1
            elif self._is_sentence(sc.text[i]):
                return False
        return window == WIN_SENTENCE or spaces <= window

    cdef int _find_near(self, Scratch* sc, int zone_at, int nctx, int s, int e,
                        const uint64_t* ids, int window, bint blocking) noexcept:
        cdef int i
        for i in range(nctx):
            if not _disjoint(ids, &self.c_mask[sc.c_key[i] * MASK_WORDS]):
                if self._near(sc, zone_at, s, e, sc.c_s[i], sc.c_e[i], window, blocking):
                    return i
        return -1

    cdef object _phrase(self, Scratch* sc, int zone_at, int i):
        cdef int cs = sc.c_s[i], ce = sc.c_e[i]
        phrase = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, &sc.text[cs],
                                           ce - cs + 1).strip()
        return "#" + phrase if cs > zone_at else phrase

    cdef int _conditional(self, Scratch* sc, int zone_at, int total, int npend, lang, int nf,
                          list keep) except -2:
        # ``keep`` holds the labels made here (the fired rows only borrow them)
        """The rules of the pending caption spans, then those inside hashtags, into the
        fired rows (as `Tagger._conditional`); the new number of rows, -1: too many."""
        cdef int p, q, r, t, s, e, f, k, z, nctx = -1, why, also, flags, window
        cdef bint fired, covered, in_caption
        cdef const uint64_t* masks
        primary = _UNKNOWN  # the video's language, found when a rule needs it
        for p in range(npend):
            s = sc.pend_s[p]
            e = sc.pend_e[p]
            in_caption = s <= zone_at
            k = sc.pend_k[p]
            for q in range(self.k_rule_first[k], self.k_rule_first[k + 1]):
                r = self.rule_of[q]
                t = self.r_topic[r]
                flags = self.r_flags[r]
                fired = False
                covered = False
                for f in range(nf):
                    if sc.f_topic[f] == t:
                        fired = True
                        if sc.f_s[f] <= s and e <= sc.f_e[f]:
                            covered = True
                            break
                if fired and in_caption and covered:
                    continue
                if flags & 8:
                    if primary is _UNKNOWN:
                        primary = self._video_lang(sc, total, lang)
                    if primary in self.not_langs[r]:
                        continue
                label = self.labels[self.r_label[r]]
                if flags & 3:
                    if nctx < 0:
                        nctx = self._contexts(sc, total)
                        if nctx < 0:
                            return -1
                    masks = &self.r_masks[r * 3 * MASK_WORDS]
                    window = self.r_window[r]
                    if (flags & 1 and not _disjoint(masks, sc.seen)
                            and self._find_near(sc, zone_at, nctx, s, e, masks, window, True) >= 0):
                        continue
                    if flags & 2:
                        if _disjoint(&masks[MASK_WORDS], sc.seen):
                            continue
                        why = self._find_near(sc, zone_at, nctx, s, e, &masks[MASK_WORDS],
                                              window, False)
                        if why < 0:
                            continue
                        reason = self._phrase(sc, zone_at, why)
                        if flags & 4:
                            also = self._find_near(sc, zone_at, nctx, s, e,
                                                   &masks[2 * MASK_WORDS], window, False)
                            if also < 0:
                                continue
                            also_phrase = self._phrase(sc, zone_at, also)
                            if also_phrase != reason:
                                reason = reason + ", " + also_phrase
                        label = label + " (if " + reason + ")"
                        made = self.made_labels.get(label)
                        if made is None:
                            if len(self.made_labels) >= MADE_LABELS_MAX:
                                keep.extend(self.made_labels)  # alive for this video
                                self.made_labels.clear()
                            self.made_labels[label] = label
                        else:
                            label = made
                nf = _fire(sc, nf, t, s, e, <void*>label)
                if nf < 0:
                    return -1
        for z in range(sc.n_zone_rules):
            r = sc.zr_rule[z]
            label = <object>sc.zr_label[z]
            flags = self.r_flags[r]
            if flags & 8:
                if primary is _UNKNOWN:
                    primary = self._video_lang(sc, total, lang)
                if primary in self.not_langs[r]:
                    continue
            if flags & 3:
                if nctx < 0:
                    nctx = self._contexts(sc, total)
                    if nctx < 0:
                        return -1
                masks = &self.r_masks[r * 3 * MASK_WORDS]
                if flags & 1 and not _disjoint(masks, sc.seen):
                    continue
                if flags & 2 and _disjoint(&masks[MASK_WORDS], sc.seen):
                    continue
                if flags & 4 and _disjoint(&masks[2 * MASK_WORDS], sc.seen):
                    continue
            # a hashtag's label: its digest holds it
            nf = _fire(sc, nf, self.r_topic[r], -1, -1, <void*>label)
            if nf < 0:
                return -1
        return nf

    cdef object _video_lang(self, Scratch* sc, int total, lang):
        """The primary language of ``lang``, else guessed from the text (`Tagger`)."""
        primary = self.primary(lang)
        return self.guess_lang(self._text(sc, total)) if primary is None else primary

    cdef object _text(self, Scratch* sc, int total):
        return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, sc.text, total)

    cdef object _result(self, Scratch* sc, int nf):
        """The `TagResult` of the fired rows (as `tagger._result` and `_explain`).

        Equal results are shared: a result is remembered under its (topic, label object)
        pairs, which decide it (made labels are interned, see `_conditional`), so videos
        with the same explanation share one result instead of allocating their own
        (results are read-only)."""
        cdef int t, f, count, i, j, k, nspans, m, ntopics = 0, nsig = 0
        cdef int order[MAX_ROWS]
        cdef int kept_s[MAX_ROWS]
        cdef int kept_e[MAX_ROWS]
        cdef void* labs[MAX_ROWS]  # the labels of each topic, one topic after the other
        cdef int first[16]
        cdef int nlabs[16]
        cdef int has[16]
        cdef bint inside
        cdef int ntop = len(self.topics)
        cdef uint64_t h = 1469598103934665603ULL
        cdef CachedResult* slot
        for t in range(ntop):
            has[t] = 0
        for f in range(nf):
            has[sc.f_topic[f]] += 1
        for t in range(ntop):
            first[t] = nsig
            nlabs[t] = 0
            count = has[t]
            if count == 0:
                continue
            ntopics += 1
            if count == 1:
                for f in range(nf):
                    if sc.f_topic[f] == t:
                        labs[nsig] = sc.f_label[f]
                        break
                nsig += 1
                nlabs[t] = 1
                continue
            # hashtags by name, then the maximal caption spans, longest first (a stable
            # sort: equal spans keep their first label); each label once
            nspans = 0
            for f in range(nf):
                if sc.f_topic[f] != t:
                    continue
                if sc.f_s[f] < 0:
                    nlabs[t] = _add_label(&labs[nsig], nlabs[t], sc.f_label[f])
                else:
                    j = nspans
                    while j > 0 and (sc.f_s[order[j - 1]] - sc.f_e[order[j - 1]]
                                     > sc.f_s[f] - sc.f_e[f]):
                        order[j] = order[j - 1]
                        j -= 1
                    order[j] = f
                    nspans += 1
            m = 0
            for j in range(nspans):
                f = order[j]
                inside = False
                for k in range(m):
                    if kept_s[k] <= sc.f_s[f] and sc.f_e[f] <= kept_e[k]:
                        inside = True
                        break
                if not inside:
                    kept_s[m] = sc.f_s[f]
                    kept_e[m] = sc.f_e[f]
                    m += 1
                    nlabs[t] = _add_label(&labs[nsig], nlabs[t], sc.f_label[f])
            nsig += nlabs[t]
        # the remembered result of these (topic, label) pairs, if any
        self.n_results += 1
        for t in range(ntop):
            for i in range(first[t], first[t] + nlabs[t]):
                h = (h ^ <uint64_t>(<size_t>labs[i]) ^ (<uint64_t>t << 56)) * 1099511628211ULL
        slot = &self.results[h & (RESULT_SLOTS - 1)]
        if slot.result != NULL and slot.h == h and slot.n == nsig:
            for t in range(ntop):
                if slot.nlabs[t] != nlabs[t]:
                    break
            else:
                for i in range(nsig):
                    if slot.labels[i] != labs[i]:
                        break
                else:
                    self.n_result_hits += 1
                    return <object>slot.result
        topics = PyTuple_New(ntopics)
        matched = {}
        i = 0
        for t in range(ntop):
            if nlabs[t] == 0:
                continue
            name = self.topics[t]
            Py_INCREF(name)
            PyTuple_SET_ITEM(topics, i, name)
            i += 1
            if nlabs[t] == 1:
                matched[name] = (<object>labs[first[t]],)
            else:
                matched[name] = tuple(sorted(
                    [<object>labs[k] for k in range(first[t], first[t] + nlabs[t])]))
        if self.set_topics is None:
            result = self.result_type(topics, matched)
        else:
            result = object.__new__(self.result_type)
            self.set_topics(result, topics)
            self.set_matched(result, matched)
        if nsig <= SIG_MAX:
            _forget(slot)
            slot.h = h
            slot.n = nsig
            for t in range(16):
                slot.nlabs[t] = nlabs[t] if t < ntop else 0
            for i in range(nsig):
                slot.labels[i] = labs[i]
                Py_INCREF(<object>labs[i])
            slot.result = <void*>result
            Py_INCREF(result)
        return result


cdef void _forget(CachedResult* slot) noexcept:
    """Drop a remembered result and the labels it holds."""
    cdef int i
    if slot.result == NULL:
        return
    for i in range(slot.n):
        Py_DECREF(<object>slot.labels[i])
    Py_DECREF(<object>slot.result)
    slot.result = NULL
    slot.n = 0


cdef int _add_label(void** labs, int n, void* label) except -1:
    """Add ``label`` to the n labels of ``labs`` unless an equal one is there."""
    cdef int k
    for k in range(n):
        if labs[k] == label or <object>labs[k] == <object>label:
            return n
    labs[n] = label
    return n + 1
