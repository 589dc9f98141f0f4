package osilab.backend;

/**
 * JSON objects written the way Python's {@code json.dumps} writes them ({@code ", "} and
 * {@code ": "} between parts), so the Java and Python backends answer byte for byte alike.
 * A value that is a {@link Raw} is already JSON and goes in as it is.
 */
final class Json {
    private Json() {}

    static final class Raw {
        final String text;

        Raw(String text) {
            this.text = text;
        }
    }

    /** {@code object("a", 1, "b", "x")} is {@code {"a": 1, "b": "x"}}. */
    static String object(Object... keysAndValues) {
        StringBuilder out = new StringBuilder("{");
        for (int i = 0; i < keysAndValues.length; i += 2) {
            if (i > 0) out.append(", ");
            out.append(quote((String) keysAndValues[i])).append(": ");
            Object value = keysAndValues[i + 1];
            if (value instanceof Raw) out.append(((Raw) value).text);
            else if (value instanceof Number) out.append(value);
            else out.append(quote(String.valueOf(value)));
        }
        return out.append('}').toString();
    }

    static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') out.append('\\').append(c);
            else if (c < 0x20 || c > 0x7e) out.append(String.format("\\u%04x", (int) c));
            else out.append(c);
        }
        return out.append('"').toString();
    }
}
