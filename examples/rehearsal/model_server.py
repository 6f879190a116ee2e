"""An internal HTTPS model server for the rehearsal: serves DIR over TLS with the given
certificate (signed by a CA made for the run), writes its port to PORT_FILE once listening,
and logs every GET to DIR/../model-server.log (so a test can count downloads).

Usage: model_server.py DIR CERT KEY PORT_FILE
"""

import functools
import http.server
import pathlib
import ssl
import sys

root, cert, key, port_file = sys.argv[1:5]
log = pathlib.Path(root).parent / "model-server.log"


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write(f"GET {self.path}\n")
        super().do_GET()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
pathlib.Path(port_file).write_text(str(server.server_address[1]))
server.serve_forever()
