// Operator catalogs as opm writes them (file-based catalogs, FBC): JSON or
// YAML documents of schema olm.package, olm.channel and olm.bundle, and the
// selection oc-mirror v2 documents (operators[] of an image set): which
// packages, channels and bundles a mirrored catalog keeps, and the images
// they name. Documents of other schemas are kept as they are, with their
// package.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/result.h"

namespace fastsync::imageset {

struct ChannelEntry {
  std::string name;  // a bundle
  std::string replaces;
  std::vector<std::string> skips;
  std::string skip_range;  // e.g. ">=1.0.0 <1.2.0"
};

struct CatalogChannel {
  std::string package;
  std::string name;
  std::vector<ChannelEntry> entries;
  std::string document;  // JSON, as read (its entries replaced by the kept ones when written)
};

struct RelatedImage {
  std::string name;
  std::string image;
};

struct CatalogBundle {
  std::string package;
  std::string name;
  std::string image;
  std::string version;  // from its olm.package property
  std::vector<RelatedImage> related_images;
  std::string document;  // the document as read (JSON), written back unchanged
};

struct CatalogPackage {
  std::string name;
  std::string default_channel;
  std::string document;  // JSON, as read (its defaultChannel replaced when written)
};

// Another schema's document (olm.deprecations, …): kept with its package.
struct OtherDocument {
  std::string package;
  std::string document;
};

struct Catalog {
  std::map<std::string, CatalogPackage> packages;  // by name
  std::vector<CatalogChannel> channels;
  std::map<std::string, CatalogBundle> bundles;  // by name
  std::vector<OtherDocument> others;

  // Adds every document of one file: JSON (one or more objects one after the
  // other, as opm writes them) or YAML ("---" separated). `file` names it in
  // errors, with the document's number.
  // With `only_packages`, documents of other packages are skipped as they are
  // read (a large catalog from which a few packages are wanted).
  Status add_file(std::string_view text, const std::string& file, const std::set<std::string>* only_packages = nullptr);
  const CatalogChannel* channel(const std::string& package, const std::string& name) const;
};

// operators[].packages[].channels[] and packages[] of an image set.
struct ChannelFilter {
  std::string name;
  std::string min_version;
  std::string max_version;
};
struct PackageFilter {
  std::string name;
  std::string default_channel;  // the kept catalog's default channel (when its own is not kept)
  std::string min_version;      // on the package: its default channel's bundles in the range
  std::string max_version;
  std::vector<ChannelFilter> channels;
};
struct CatalogFilter {
  bool full = false;
  std::vector<PackageFilter> packages;  // none: every package
};

// What a catalog keeps:
// - no packages and not full: the head of every package's default channel;
// - a package without channels: the head of its default channel (with a
//   version range: every bundle of that channel in the range);
// - channels named: the head of each (with a range: every bundle in it);
// - full: every bundle of what is named (of the whole catalog without packages).
// The kept channels hold only kept bundles; a kept channel left with two heads
// (no entry replacing or skipping the other) is an error naming the package
// and channel, as oc-mirror reports it. A package or channel named but not
// in the catalog is an error too.
Result<Catalog> select_bundles(const Catalog& catalog, const CatalogFilter& filter, const std::string& catalog_name);

// Every image a catalog names (bundle images and related images), each once, sorted.
std::vector<std::string> images_of(const Catalog& catalog);

// The catalog as opm lays it out: one file per package, "<package>/catalog.json",
// its documents one per line, packages and channels and bundles in a stable
// order (the same catalog gives the same bytes).
std::map<std::string, std::string> render_catalog(const Catalog& catalog);

// Semantic version order (major.minor.patch, a pre-release below its release);
// nullopt when either is not a version.
std::optional<int> compare_semver(std::string_view a, std::string_view b);

}  // namespace fastsync::imageset
