{
  "targets": [
    {
      "target_name": "labtrace_hash",
      "sources": ["native/hash.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-deprecated-declarations"],
      "xcode_settings": { "OTHER_CFLAGS": ["-Wno-deprecated-declarations"] }
    }
  ]
}
