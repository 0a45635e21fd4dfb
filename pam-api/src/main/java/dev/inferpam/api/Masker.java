package dev.inferpam.api;

import java.util.Map;

/**
 * Masks sensitive values in response text.
 *
 * <p>Streaming from the start: a response is masked through a {@link Session}, fed text in
 * pieces as it arrives. A session may hold back a bounded tail (a value could continue in the
 * next piece) and releases it on {@link Session#finish()}.
 *
 * <p><b>Thread-safety:</b> a {@code Masker} is shared and must be thread-safe; a
 * {@link Session} belongs to one response and is used by one thread at a time.
 */
public interface Masker {

  /** Starts masking one response. */
  Session open();

  /** Masks a whole text at once; equal to feeding it to one session and finishing. */
  default String mask(String text) {
    Session session = open();
    return session.push(text) + session.finish();
  }

  /** The masking state of one response. */
  interface Session {
    /** Feeds the next piece; returns the text that may be released now. */
    String push(String text);

    /** Ends the input; returns whatever was held back, masked. */
    String finish();

    /** How many values each detector masked so far. */
    default Map<String, Integer> counts() {
      return Map.of();
    }
  }

  /** A masker that changes nothing. */
  Masker IDENTITY =
      () ->
          new Session() {
            @Override
            public String push(String text) {
              return text;
            }

            @Override
            public String finish() {
              return "";
            }
          };
}
