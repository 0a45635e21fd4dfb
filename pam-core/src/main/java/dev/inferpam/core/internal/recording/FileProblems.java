package dev.inferpam.core.internal.recording;

import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NotDirectoryException;
import java.util.Locale;

/**
 * Says why a file operation failed in words an operator acts on: {@code permission denied},
 * {@code read-only file system}, {@code not a directory}, with the file. The JDK's own message
 * of an {@link AccessDeniedException} is the bare path, which reads like no reason at all.
 * Stateless.
 */
final class FileProblems {
  private FileProblems() {}

  /**
   * {@code "<why>: <file>"} for a {@link FileSystemException}, else the exception's type and
   * message. Never quotes file contents (these exceptions carry none).
   */
  static String describe(Throwable e) {
    if (e instanceof FileSystemException fs) {
      String file = fs.getFile() == null ? "" : ": " + fs.getFile();
      String reason = fs.getReason();
      if (e instanceof AccessDeniedException) return "permission denied" + file;
      if (e instanceof NotDirectoryException) return "not a directory" + file;
      // Files.createDirectories on a path that is a regular file.
      if (e instanceof FileAlreadyExistsException && reason == null)
        return "exists and is not a directory" + file;
      if (reason != null && !reason.isBlank())
        return reason.strip().toLowerCase(Locale.ROOT) + file;
    }
    String m = e.getMessage();
    return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }
}
