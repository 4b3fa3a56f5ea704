"""Local stand-ins for the Google Cloud APIs that have no emulator (Cloud SQL Admin, Storage Transfer).

Each is a small server speaking the API's documented REST wire format, so the real Google client libraries
work against it unchanged (pointed at it by endpoint); GCS itself is the real fake-gcs-server
(``lc2backup.devstack.fakegcs``). Test-only: never installed in the image.
"""
