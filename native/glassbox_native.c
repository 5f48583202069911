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

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                                    napi_value *this_arg, void **data);
extern napi_status napi_get_value_int64(napi_env env, napi_value value, int64_t *result);
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

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "setMallocThresholds", (size_t)-1, set_malloc_thresholds, NULL, &fn) != 0 ||
      napi_set_named_property(env, exports, "setMallocThresholds", fn) != 0)
    return NULL;
  return exports;
}
