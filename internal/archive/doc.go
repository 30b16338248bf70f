// Package archive collects a job's artifacts with GitLab's path rules, writes
// them as zip or gzip archives, and extracts dependency archives into a job's
// build directory.
//
// Everything here expects hostile input: the build directory may contain any
// files and symlinks the job's handler chose to create, and archives come
// from the network. So the package
//
//   - never follows a symlink while collecting, and reads files only through
//     an [os.Root] on the build directory, so that nothing outside it is read
//     even if the tree changes under it;
//   - stores symlinks as symlinks, never the files they point to;
//   - checks every archive entry before writing anything, creates files only
//     through an [os.Root] on the target directory, never writes through a
//     symlink, and bounds the number of entries and the bytes actually
//     decompressed ([Limits]).
//
// Errors wrap the sentinels [ErrUnsafe], [ErrTooLarge], [ErrNotZip] and
// [ErrNotRegular], or the underlying error, for [errors.Is] and [errors.As].
package archive
