// A Java front service: GET /call/{id} calls GET /work/{id} on the backend
// (args[0], host:port) with java.net.http.HttpClient and answers with what
// the backend said, on a pool of 32 threads. It prints "READY <addr>" once
// it listens.
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.Executors;

public class Front {
    public static void main(String[] args) throws Exception {
        String backend = args[0];
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 128);
        server.createContext("/call/", exchange -> {
            String path = exchange.getRequestURI().getPath();
            String id = path.substring(path.lastIndexOf('/') + 1);
            byte[] body;
            int status = 200;
            try {
                HttpRequest req = HttpRequest.newBuilder(URI.create("http://" + backend + "/work/" + id)).build();
                body = client.send(req, HttpResponse.BodyHandlers.ofByteArray()).body();
            } catch (Exception e) {
                body = new byte[0];
                status = 502;
            }
            exchange.sendResponseHeaders(status, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.setExecutor(Executors.newFixedThreadPool(32));
        server.start();
        System.out.println("READY 127.0.0.1:" + server.getAddress().getPort());
        System.out.flush();
    }
}
