"""Key pairs a test makes with openssl: SMART Backend Services clients."""
import os
import subprocess

from support.env import work


def keypair(name, kind):
    """A new private key in the work folder (`kind` "rsa": RSA 2048, else EC P-384), mode 0600:
    its path and the public key's PEM."""
    key, pub = os.path.join(work(), name + ".pem"), os.path.join(work(), name + ".pub.pem")
    if kind == "rsa":
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                       check=True, capture_output=True)
    else:
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", key],
                       check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    os.chmod(key, 0o600)
    with open(pub) as f:
        return key, f.read()
