# The docs against a fresh install of the extension:
#  (a) every function (by name, internal ones included), view, table and
#      elt.* setting of the extension is named in docs/reference.md as
#      `elt.name` (followed by anything but a letter, digit or underscore);
#  (b) every elt.name that README.md or docs/*.md mention is a function,
#      view, table, sequence, type or setting of the extension: a name that
#      does not exist is a mistake in the docs (nothing is allow-listed);
#  (c) every relative link between README.md, docs/*.md and bench/README.md
#      points at a file that exists, and at a heading of it that exists.
# The files are read from the tree this test belongs to (test/t/../..).
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = dirname(__FILE__) . '/../..';

sub slurp
{
	my ($path) = @_;
	open(my $fh, '<:encoding(UTF-8)', "$root/$path") or die "cannot read $root/$path: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

my @docs = ('README.md', map { s{^\Q$root\E/}{}r } sort glob("$root/docs/*.md"));
ok(scalar(grep { $_ eq 'docs/reference.md' } @docs), 'docs/reference.md exists')
  or BAIL_OUT('no docs/reference.md');
my %text = map { $_ => slurp($_) } @docs, 'bench/README.md';

my $node = PostgreSQL::Test::Cluster->new('docs');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'elt_governance'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION elt_governance');

sub names
{
	my ($sql) = @_;
	return grep { $_ ne '' } split /\n/, $node->safe_psql('postgres', $sql);
}

# what the extension has
my $member = q{
	SELECT d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	WHERE e.extname = 'elt_governance' AND d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass};
my @functions = names(qq{
	SELECT DISTINCT p.proname FROM pg_proc p
	WHERE p.oid IN ($member AND d.classid = 'pg_proc'::regclass) ORDER BY 1});
my %relations = map { split /\|/ } names(qq{
	SELECT c.relname || '|' || c.relkind::text FROM pg_class c
	WHERE c.oid IN ($member AND d.classid = 'pg_class'::regclass) ORDER BY 1});
my @types = names(q{
	SELECT t.typname FROM pg_type t WHERE t.typnamespace = 'elt'::regnamespace ORDER BY 1});
my @settings = map { s/^elt\.//r } names(q{
	SELECT name FROM pg_settings WHERE name LIKE 'elt.%' ORDER BY 1});

cmp_ok(scalar(@functions), '>', 100, 'the extension has its functions');
cmp_ok(scalar(grep { $relations{$_} eq 'v' } keys %relations), '>', 10, 'and its views');
cmp_ok(scalar(@settings), '>', 5, 'and its settings');

# (a) every function, view, table and setting is in docs/reference.md
my $reference = $text{'docs/reference.md'};
my @required = (
	(map { [ 'function', $_ ] } @functions),
	(map { [ $relations{$_} eq 'v' ? 'view' : 'table', $_ ] }
	  grep { $relations{$_} =~ /^[rpv]$/ } sort keys %relations),
	(map { [ 'setting', $_ ] } @settings));
my @missing = map { "$_->[0] elt.$_->[1]" }
  grep { $reference !~ /`elt\.\Q$_->[1]\E(?![a-z0-9_])/ } @required;
is(join("\n", @missing), '', 'every function, view, table and setting is in docs/reference.md')
  or diag('not named in docs/reference.md as `elt.name`: ' . join(', ', @missing));

# (b) every elt.name the docs mention exists
my %exists = map { $_ => 1 } @functions, keys %relations, @types, @settings;
for my $doc (@docs)
{
	my %unknown;
	while ($text{$doc} =~ /(?<![A-Za-z0-9_\/.-])elt\.([a-z_][a-z0-9_]*)/g)
	{
		$unknown{$1} = 1 unless $exists{$1};
	}
	is(join(', ', map { "elt.$_" } sort keys %unknown), '', "every elt.* name in $doc exists");
}

# (c) relative links point at files and headings that exist
sub anchors
{
	my ($md) = @_;
	my (%seen, %anchors);
	my $in_code = 0;
	for my $line (split /\n/, $md)
	{
		$in_code = !$in_code if $line =~ /^```/;
		next if $in_code || $line !~ /^#+\s+(.*?)\s*$/;
		# GitHub's slug: lower case, punctuation but - and _ dropped, spaces to -
		my $slug = lc $1;
		$slug =~ s/[^\w\- ]//g;
		$slug =~ s/ /-/g;
		my $n = $seen{$slug}++;
		$anchors{ $n ? "$slug-$n" : $slug } = 1;
	}
	return \%anchors;
}
for my $doc (@docs, 'bench/README.md')
{
	my @broken;
	my $dir = dirname($doc);
	my $body = $text{$doc} =~ s/^```.*?^```//msgr;
	while ($body =~ /\]\(([^)\s]+)\)/g)
	{
		my $link = $1;
		next if $link =~ /^[a-z]+:/;    # http:, https:, mailto:
		my ($file, $anchor) = split /#/, $link, 2;
		my $target = $file eq '' ? $doc : File::Spec->canonpath("$dir/$file");
		$target =~ s{(^|/)[^/]+/\.\./}{$1}g;
		if (!-e "$root/$target")
		{
			push @broken, "$link (no file $target)";
			next;
		}
		next unless defined $anchor && $target =~ /\.md$/;
		$text{$target} //= slurp($target);
		push @broken, "$link (no heading #$anchor in $target)"
		  unless anchors($text{$target})->{$anchor};
	}
	is(join('; ', @broken), '', "links of $doc point at files and headings that exist");
}

$node->stop;
done_testing();
