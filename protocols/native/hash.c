/*
 * Batched SHA-256 for the trust code: a batch's record leaves and RFC 6962 Merkle roots in one call
 * each, instead of one JavaScript-to-native call per hash. The hashing is OpenSSL's (the one built
 * into Node), through its direct SHA256_* functions: the one-shot SHA256() and the EVP interface
 * look the algorithm up on every call, which costs more than hashing a 65-byte node.
 *
 * Exports, all writing into caller-owned buffers and returning undefined:
 *   sha256(data: Uint8Array, out: Uint8Array)                       out[0..32) = SHA-256(data)
 *   hashSlices(bytes: Uint8Array, bounds: Uint32Array, out: Uint8Array)
 *       for i < bounds.length - 1: out[32i..32i+32) = SHA-256(bytes[bounds[i]..bounds[i+1]))
 *   merkleRoot(leaves: Uint8Array, out: Uint8Array)
 *       the RFC 6962 Merkle tree hash of the leaf hashes leaves[32i..32i+32)
 * Bad arguments throw a TypeError or RangeError naming the problem; nothing is read or written out
 * of bounds.
 */
#include <node_api.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#define HASH 32

static void sha256(const uint8_t *data, size_t length, uint8_t *out) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data, length);
  SHA256_Final(out, &ctx);
}

static void node_hash(const uint8_t *left, const uint8_t *right, uint8_t *out) {
  uint8_t joined[1 + 2 * HASH];
  joined[0] = 0x01;
  memcpy(joined + 1, left, HASH);
  memcpy(joined + 1 + HASH, right, HASH);
  sha256(joined, sizeof joined, out);
}

static int typed_array(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) != napi_ok) return 0;
  if (*length == 0) *data = NULL;
  return type == want;
}

static size_t args(napi_env env, napi_callback_info info, napi_value *argv, size_t max) {
  size_t argc = max;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  return argc;
}

static napi_value js_sha256(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *data, *out;
  size_t length, out_length;
  if (args(env, info, argv, 2) < 2 || !typed_array(env, argv[0], napi_uint8_array, &data, &length) ||
      !typed_array(env, argv[1], napi_uint8_array, &out, &out_length)) {
    napi_throw_type_error(env, "E_HASH_ARGS", "sha256(data: Uint8Array, out: Uint8Array)");
    return NULL;
  }
  if (out_length < HASH) {
    napi_throw_range_error(env, "E_HASH_ARGS", "sha256: out holds fewer than 32 bytes");
    return NULL;
  }
  sha256(data, length, out);
  return NULL;
}

static napi_value js_hash_slices(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *bytes, *bounds_data, *out;
  size_t length, count, out_length;
  if (args(env, info, argv, 3) < 3 || !typed_array(env, argv[0], napi_uint8_array, &bytes, &length) ||
      !typed_array(env, argv[1], napi_uint32_array, &bounds_data, &count) ||
      !typed_array(env, argv[2], napi_uint8_array, &out, &out_length)) {
    napi_throw_type_error(env, "E_HASH_ARGS", "hashSlices(bytes: Uint8Array, bounds: Uint32Array, out: Uint8Array)");
    return NULL;
  }
  const uint32_t *bounds = bounds_data;
  size_t slices = count == 0 ? 0 : count - 1;
  if (out_length / HASH < slices) {
    napi_throw_range_error(env, "E_HASH_ARGS", "hashSlices: out holds fewer than 32 bytes per slice");
    return NULL;
  }
  for (size_t i = 0; i < slices; i++) {
    if (bounds[i] > bounds[i + 1] || bounds[i + 1] > length) {
      napi_throw_range_error(env, "E_HASH_ARGS", "hashSlices: bounds decrease or pass the end of the bytes");
      return NULL;
    }
  }
  for (size_t i = 0; i < slices; i++) sha256((const uint8_t *)bytes + bounds[i], bounds[i + 1] - bounds[i], (uint8_t *)out + HASH * i);
  return NULL;
}

static napi_value js_merkle_root(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *leaves_data, *out;
  size_t length, out_length;
  if (args(env, info, argv, 2) < 2 || !typed_array(env, argv[0], napi_uint8_array, &leaves_data, &length) ||
      !typed_array(env, argv[1], napi_uint8_array, &out, &out_length)) {
    napi_throw_type_error(env, "E_HASH_ARGS", "merkleRoot(leaves: Uint8Array, out: Uint8Array)");
    return NULL;
  }
  if (length % HASH != 0 || out_length < HASH) {
    napi_throw_range_error(env, "E_HASH_ARGS", "merkleRoot: leaves is not a whole number of 32-byte hashes, or out holds fewer than 32 bytes");
    return NULL;
  }
  const uint8_t *leaves = leaves_data;
  size_t n = length / HASH;
  if (n == 0) {
    sha256(NULL, 0, out);
    return NULL;
  }
  /* the compact tree's peaks: one per set bit of the count, so at most 64 */
  uint8_t peaks[64][HASH];
  int top = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t hash[HASH];
    memcpy(hash, leaves + HASH * i, HASH);
    for (size_t k = i; k & 1; k >>= 1) node_hash(peaks[--top], hash, hash);
    memcpy(peaks[top++], hash, HASH);
  }
  uint8_t root[HASH];
  memcpy(root, peaks[--top], HASH);
  while (top > 0) node_hash(peaks[--top], root, root);
  memcpy(out, root, HASH);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"sha256", NULL, js_sha256, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hashSlices", NULL, js_hash_slices, NULL, NULL, NULL, napi_enumerable, NULL},
      {"merkleRoot", NULL, js_merkle_root, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
