// TEMPORARY: the seam of `bitplan report` (issue 16), owned by the report helper, so that `bitplan run` compiles on
// this branch. The coordinator deletes this file at merge, where the report helper's real
// `Report.write(run:plan:validation:directory:)` replaces it. It writes nothing and returns [].
enum Report {
  /// TEMPORARY stand-in: writes nothing, returns no paths.
  static func write(run: String, plan: String?, validation: String?, directory: String) throws -> [String] { [] }
}
