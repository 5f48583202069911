/*
 * glassbox's native helper (Linux with glibc only): sets the C allocator's policy for large blocks.
 *
 * Why: every ONNX Runtime result reaches JavaScript as a new ArrayBuffer that the onnxruntime-node
 * binding allocates (calloc) and copies into. V8 frees those buffers in batches, at garbage
 * collection; glibc then unmaps them (blocks over M_MMAP_THRESHOLD) or trims them off the top of the
 * heap (past M_TRIM_THRESHOLD), and the next result faults every one of its pages in afresh. On a
 * virtual machine a page fault costs microseconds, so a [128,3072] float32 result (384 pages) cost
 * more than the matrix product that made it. Python and PyTorch free their arrays one at a time and
 * glibc keeps that memory; with large blocks served from the heap and the heap kept, glassbox does
 * too. See bench/matmul-gap.sh and bench/README.md.
 *
 * The module is built by native/build.mjs at `npm install` (a C compiler and nothing else: no
 * node-gyp, no headers, nothing downloaded) and loaded by src/tensor/backends/native.ts. It declares
 * the few Node-API functions it calls itself; Node-API is a stable C ABI, resolved against the node
 * executable when the module is loaded.
 */
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                                    napi_value *this_arg, void **data);
extern napi_status napi_get_value_int64(napi_env env, napi_value value, int64_t *result);
extern napi_status napi_create_int64(napi_env env, int64_t value, napi_value *result);
extern napi_status napi_get_boolean(napi_env env, int value, napi_value *result);
extern napi_status napi_create_function(napi_env env, const char *utf8name, size_t length, napi_callback cb,
                                        void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name, napi_value value);
extern napi_status napi_throw_type_error(napi_env env, const char *code, const char *msg);

/*
 * setMallocThresholds(mmapThreshold, trimThreshold): mallopt(M_MMAP_THRESHOLD) and
 * mallopt(M_TRIM_THRESHOLD), in bytes. Returns whether glibc accepted both (mallopt returns 1
 * on success; older glibc versions refuse an mmap threshold above 32 MiB).
 */
static napi_value set_malloc_thresholds(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t mmap_threshold = 0, trim_threshold = 0;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 2 ||
      napi_get_value_int64(env, argv[0], &mmap_threshold) != 0 ||
      napi_get_value_int64(env, argv[1], &trim_threshold) != 0 || mmap_threshold <= 0 || trim_threshold <= 0 ||
      mmap_threshold > INT32_MAX || trim_threshold > INT32_MAX) {
    napi_throw_type_error(env, NULL, "setMallocThresholds(mmapThreshold, trimThreshold): two positive byte counts below 2^31");
    return NULL;
  }
  int ok = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1;
  ok = (mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1) && ok;
  napi_get_boolean(env, ok, &result);
  return result;
}

/*
 * reserveHugeHeap(bytes): grows the heap by about `bytes` of address space (nothing is touched),
 * asks the kernel for transparent huge pages there (madvise MADV_HUGEPAGE), and gives it back to the
 * heap's free top, where M_TRIM_THRESHOLD (set above `bytes` by the caller) keeps it. Returns the
 * bytes so marked: 0 where none were (the heap did not grow contiguously, or madvise failed).
 *
 * Why: the heap still grows for the first hundred or so large results of a process (V8 frees them
 * only at garbage collection, so tens of MB of results are alive at once), and each new 4 KiB page
 * is a fault (8-15 us on these virtual machines): 180-190 faults per eager [128,768]@[768,3072]
 * over its first 30 calls, about as long as the product itself. On memory marked for huge pages the
 * kernel faults 2 MiB at a time. Only what results are written into becomes resident, as before;
 * past the marked range the heap grows as before (a new mapping, without the mark).
 */
static napi_value reserve_huge_heap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t bytes = 0;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 1 || napi_get_value_int64(env, argv[0], &bytes) != 0 ||
      bytes <= 0 || bytes > INT32_MAX) {
    napi_throw_type_error(env, NULL, "reserveHugeHeap(bytes): a positive byte count below 2^31");
    return NULL;
  }
  const uintptr_t huge = (uintptr_t)2 << 20;
  int64_t marked = 0;
  /* A request just larger than the heap's free top makes glibc grow the heap (brk), by the request
     plus M_TOP_PAD: the pad is the reservation. The pad goes back to glibc's default after. */
  size_t request = mallinfo2().keepcost + ((size_t)64 << 10);
  mallopt(M_TOP_PAD, (int)bytes);
  char *low = (char *)sbrk(0);
  char *block = (char *)malloc(request);
  char *high = (char *)sbrk(0);
  mallopt(M_TOP_PAD, 128 * 1024);
  /* Marked only when the block ends in the new growth (between the old and the new break): it
     then starts in the old top of the heap, contiguous with it, and the growth is all heap. */
  if (block && low != (char *)-1 && high != (char *)-1 && block + request > low && block + request <= high) {
    uintptr_t from = ((uintptr_t)block + huge - 1) & ~(huge - 1);
    uintptr_t to = (uintptr_t)high & ~(huge - 1);
    if (to > from && madvise((void *)from, to - from, MADV_HUGEPAGE) == 0) marked = (int64_t)(to - from);
  }
  free(block);
  napi_create_int64(env, marked, &result);
  return result;
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "setMallocThresholds", (size_t)-1, set_malloc_thresholds, NULL, &fn) != 0 ||
      napi_set_named_property(env, exports, "setMallocThresholds", fn) != 0)
    return NULL;
  if (napi_create_function(env, "reserveHugeHeap", (size_t)-1, reserve_huge_heap, NULL, &fn) != 0 ||
      napi_set_named_property(env, exports, "reserveHugeHeap", fn) != 0)
    return NULL;
  return exports;
}
