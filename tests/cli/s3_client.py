"""A stock S3 client (boto3) for the S3 tests: what a user without exporter would run.

Usage: s3_client.py COMMAND ARGS...  (endpoint, region and credentials from the standard AWS_*
environment variables; path-style addressing).

  mkbucket BUCKET                  create a bucket
  keys BUCKET PREFIX               print every key under PREFIX, one per line
  uploads BUCKET PREFIX            print "KEY UPLOAD_ID" of every open multipart upload
  download BUCKET PREFIX DIR       download every object under PREFIX into DIR (relative names)
  put BUCKET KEY FILE              upload FILE to KEY with one PutObject
  delete BUCKET KEY                delete one object
  start-upload BUCKET KEY          start a multipart upload (and leave it open); print its id
  iam-user                         create a user with full S3 rights; print "KEY_ID SECRET"
  enable-auth                      moto only: check signatures from now on
"""

import os
import sys
import urllib.request

import boto3
from botocore.config import Config


def client(service="s3"):
    return boto3.client(
        service,
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def all_keys(s3, bucket, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def main(argv):
    cmd, args = argv[1], argv[2:]
    s3 = client()
    if cmd == "mkbucket":
        s3.create_bucket(Bucket=args[0])
    elif cmd == "keys":
        for k in all_keys(s3, args[0], args[1]):
            print(k)
    elif cmd == "uploads":
        out = s3.list_multipart_uploads(Bucket=args[0], Prefix=args[1])
        for u in out.get("Uploads", []):
            print(u["Key"], u["UploadId"])
    elif cmd == "download":
        bucket, prefix, dest = args
        for k in all_keys(s3, bucket, prefix):
            rel = k[len(prefix):].lstrip("/")
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path) or dest, exist_ok=True)
            s3.download_file(bucket, k, path)
    elif cmd == "put":
        with open(args[2], "rb") as f:
            s3.put_object(Bucket=args[0], Key=args[1], Body=f.read())
    elif cmd == "delete":
        s3.delete_object(Bucket=args[0], Key=args[1])
    elif cmd == "start-upload":
        print(s3.create_multipart_upload(Bucket=args[0], Key=args[1])["UploadId"])
    elif cmd == "iam-user":
        iam = client("iam")
        iam.create_user(UserName="exporter-test")
        iam.put_user_policy(
            UserName="exporter-test",
            PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
        )
        key = iam.create_access_key(UserName="exporter-test")["AccessKey"]
        print(key["AccessKeyId"], key["SecretAccessKey"])
    elif cmd == "enable-auth":
        req = urllib.request.Request(
            os.environ["AWS_ENDPOINT_URL"] + "/moto-api/reset-auth",
            data=b"0",
            method="POST",
            # A form content type would make the server parse the body as a form.
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(req).read()
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
